namespace CdcSync.Configuration;

/// <summary>
/// The known name closest to one an operator typed (a config key, a verb, an option), for the
/// "did you mean" of an error line. Case does not count; a name further than a third of the
/// typed length (at least two edits) away is no suggestion.
/// </summary>
internal static class DidYouMean
{
    public static string? Closest(string typed, IEnumerable<string> known) =>
        known
            .Select(n => (Name: n, Distance: Distance(n, typed)))
            .Where(c => c.Distance <= Math.Max(2, typed.Length / 3))
            .OrderBy(c => c.Distance)
            .Select(c => c.Name)
            .FirstOrDefault();

    /// <summary>Levenshtein distance ignoring case: how many one-letter edits turn one name into the other.</summary>
    private static int Distance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            previous = current;
        }

        return previous[b.Length];
    }
}
