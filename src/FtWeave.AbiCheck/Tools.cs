using System.ComponentModel;
using System.Diagnostics;

namespace FtWeave.AbiCheck;

/// <summary>Runs the machine's command-line tools (nm, clang, gcc).</summary>
internal static class Tools
{
    /// <summary>The tool's trimmed standard output, or null when it is missing or fails.</summary>
    public static string? Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        try
        {
            using Process process = Process.Start(start)!;
            // Read both streams before waiting, so that neither pipe fills up.
            var error = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            error.Wait();
            process.WaitForExit();
            return process.ExitCode == 0 ? output.Trim() : null;
        }
        catch (Win32Exception)
        {
            return null; // not installed
        }
    }
}
