using MambaSt.Batch.Worker;

var builder = WebApplication.CreateBuilder(args);

builder.AddWorkerServices();

var app = builder.Build();

app.MapWorkerHealthEndpoints();

app.Run();
