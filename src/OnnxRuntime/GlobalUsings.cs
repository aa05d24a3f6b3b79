// The upstream sources assume these imports from their own project file.
global using System.Reflection;
