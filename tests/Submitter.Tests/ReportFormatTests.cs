using MambaSt.Batch.Submitter.Batches;

namespace MambaSt.Batch.Submitter.Tests;

public class ReportFormatTests
{
    [Fact]
    public void Csv_quotes_fields_with_commas_quotes_and_newlines()
    {
        var row = new ReportRow
        {
            JobId = Guid.Empty, RelativePath = "a,b.jpg", ContentRef = "/in/a,b.jpg", Status = JobStatus.Failed, OutputRef = "/out/a,b.jpg",
            ErrorCode = "InvalidImage", ErrorMessage = "bad \"header\"\nsecond line",
        };
        var lines = BatchReport.ToCsv([row]).Split('\n', 2);
        lines[0].ShouldStartWith("job_id,relative_path,content_ref,status,output_ref");
        lines[1].ShouldContain("\"a,b.jpg\",\"/in/a,b.jpg\",failed,\"/out/a,b.jpg\"");
        lines[1].ShouldContain("InvalidImage,\"bad \"\"header\"\"\nsecond line\"");
    }
}
