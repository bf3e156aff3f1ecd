using CdcSync.Connectors.Salesforce.PubSub;
using CdcSync.Inbound;

namespace CdcSync.Tests.Connectors.Salesforce.PubSub;

public sealed class ChangeStreamBatchTests
{
    [Fact]
    public void Collapse_UpdatesOfOneRow_FoldIntoItsFirstRecordWithTheLastValues_OtherOriginsAndDeletesKeptApart()
    {
        var batch = new List<InboundRecord>();
        InboundRecord Update(string id, string column, string value, bool own = false) =>
            new("sf_accounts", "id", new Dictionary<string, object?> { ["id"] = id, [column] = value }, Deleted: false) { UpdateOnly = true, OwnWrite = own };

        ChangeStream(batch, Update("001A", "phone", "1"));
        ChangeStream(batch, Update("001B", "phone", "x"));
        ChangeStream(batch, Update("001A", "name", "Acme"));
        ChangeStream(batch, Update("001A", "phone", "2"));
        ChangeStream(batch, Update("001A", "phone", "3", own: true));
        ChangeStream(batch, new("sf_accounts", "id", new Dictionary<string, object?> { ["id"] = "001B" }, Deleted: true));
        ChangeStream(batch, Update("001B", "phone", "y"));

        Assert.Equal(5, batch.Count);
        Assert.Equal(new Dictionary<string, object?> { ["id"] = "001A", ["phone"] = "2", ["name"] = "Acme" }, batch[0].Values);
        Assert.Equal("3", batch[2].Values["phone"]);
        Assert.True(batch[2].OwnWrite);
        Assert.True(batch[3].Deleted);
        Assert.Equal("y", batch[4].Values["phone"]);
    }

    private static void ChangeStream(List<InboundRecord> batch, InboundRecord record) => SalesforceChangeStream.Collapse(batch, record);
}
