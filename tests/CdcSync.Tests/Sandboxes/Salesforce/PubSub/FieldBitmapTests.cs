using CdcSync.Sandboxes.Salesforce.PubSub;

namespace CdcSync.Tests.Sandboxes.Salesforce.PubSub;

public sealed class FieldBitmapTests
{
    [Fact]
    public void Encode_DocumentedExample_MatchesThePubSubGuide()
    {
        // "Event Deserialization Considerations": ['0x650004E0', '4-0x10', '7-0x06'].
        var encoded = FieldBitmap.Encode([5, 6, 7, 10, 24, 26, 29, 30], new Dictionary<int, IReadOnlyCollection<int>> { [7] = [1, 2], [4] = [4] });
        Assert.Equal(["0x650004E0", "4-0x10", "7-0x06"], encoded);
        Assert.Equal([5, 6, 7, 10, 24, 26, 29, 30], FieldBitmap.Decode("0x650004E0"));
    }

    [Fact]
    public void Encode_NoFields_IsAnEmptyList() =>
        Assert.Empty(FieldBitmap.Encode([], new Dictionary<int, IReadOnlyCollection<int>>()));
}
