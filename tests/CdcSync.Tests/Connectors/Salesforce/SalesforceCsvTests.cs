using CdcSync.Connectors.Salesforce;

namespace CdcSync.Tests.Connectors.Salesforce;

public sealed class SalesforceCsvTests
{
    [Fact]
    public void Parse_QuotedValuesWithCommasQuotesAndLineBreaks_UnescapesThemAndEmptyIsNull()
    {
        var (header, rows) = SalesforceCsv.Parse("\"Id\",\"Name\",\"Account.Name\"\n\"001A\",\"Says \"\"hi\"\", twice,\nover two lines\",\"\"\n\"001B\",\"Plain\",\"Parent\"\n");

        Assert.Equal(["Id", "Name", "Account.Name"], header);
        Assert.Equal(2, rows.Count);
        Assert.Equal(new[] { "001A", "Says \"hi\", twice,\nover two lines", "(null)" }, rows[0].Select(v => v ?? "(null)"));
        Assert.Equal(new[] { "001B", "Plain", "Parent" }, rows[1].Select(v => v ?? "(null)"));
    }

    [Fact]
    public void Parse_HeaderOnlyOrEmpty_HasNoRows()
    {
        Assert.Empty(SalesforceCsv.Parse("\"Id\",\"Name\"\n").Rows);
        Assert.Empty(SalesforceCsv.Parse(string.Empty).Rows);
    }

    [Fact]
    public void Parse_RowWithTooFewValues_ThrowsNamingTheLine()
    {
        var e = Assert.Throws<SalesforceApiException>(() => SalesforceCsv.Parse("\"Id\",\"Name\"\n\"001A\"\n"));
        Assert.Contains("not valid CSV: Found 1 column(s) on row 1", e.Message, StringComparison.Ordinal);
    }
}
