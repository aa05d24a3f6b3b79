return await MambaSt.Batch.Submitter.Cli.RunAsync(args);
