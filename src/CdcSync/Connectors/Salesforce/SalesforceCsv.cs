using nietras.SeparatedValues;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// Reads a Bulk API 2.0 results page: a header of field names (parent fields as <c>Account.Name</c>),
/// then one row per record, every value quoted, quotes doubled, line breaks kept inside quotes.
/// Salesforce has no empty strings, so an empty value is null. Parsed with Sep (nietras.SeparatedValues).
/// </summary>
internal static class SalesforceCsv
{
    public static (string[] Header, List<string?[]> Rows) Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return ([], []);
        }

        try
        {
            using var reader = Sep.New(',').Reader(o => o with { Unescape = true }).FromText(text);
            var header = reader.Header.ColNames.ToArray();
            var rows = new List<string?[]>();
            foreach (var row in reader)
            {
                var values = new string?[header.Length];
                for (var i = 0; i < header.Length; i++)
                {
                    var span = row[i].Span;
                    values[i] = span.Length == 0 ? null : span.ToString();
                }

                rows.Add(values);
            }

            return (header, rows);
        }
        catch (InvalidDataException e)
        {
            // Sep names the row and line, and the number of values against the header's.
            throw new SalesforceApiException($"Salesforce returned a Bulk API results page that is not valid CSV: {e.Message.ReplaceLineEndings(" ")}", null, null, isTransient: false, inner: e);
        }
    }
}
