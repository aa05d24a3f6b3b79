using System.CommandLine;

var root = new RootCommand("mambast: stylize photo archives with Mamba-ST");
return root.Parse(args).Invoke();
