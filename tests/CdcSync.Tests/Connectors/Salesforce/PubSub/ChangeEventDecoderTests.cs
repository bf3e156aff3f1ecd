using Avro;
using Avro.Generic;
using Avro.IO;
using CdcSync.Connectors.Salesforce;
using CdcSync.Connectors.Salesforce.PubSub;

namespace CdcSync.Tests.Connectors.Salesforce.PubSub;

public sealed class ChangeEventDecoderTests
{
    // Field positions: 0 ChangeEventHeader, 1 Name, 2 Phone, 3 BillingAddress (Street 0, City 1), 4 LastModifiedDate.
    private const string SchemaJson = """
        {"type":"record","name":"AccountChangeEvent","namespace":"com.sforce.eventbus","fields":[
          {"name":"ChangeEventHeader","type":{"type":"record","name":"ChangeEventHeader","fields":[
            {"name":"entityName","type":"string"},
            {"name":"recordIds","type":{"type":"array","items":"string"}},
            {"name":"changeType","type":{"type":"enum","name":"ChangeType","symbols":["CREATE","UPDATE","DELETE","UNDELETE","GAP_CREATE","GAP_UPDATE","GAP_DELETE","GAP_UNDELETE","GAP_OVERFLOW"]}},
            {"name":"changeOrigin","type":"string"},
            {"name":"transactionKey","type":"string"},
            {"name":"sequenceNumber","type":"int"},
            {"name":"commitTimestamp","type":"long"},
            {"name":"commitNumber","type":"long"},
            {"name":"commitUser","type":"string"},
            {"name":"nulledFields","type":{"type":"array","items":"string"}},
            {"name":"diffFields","type":{"type":"array","items":"string"}},
            {"name":"changedFields","type":{"type":"array","items":"string"}}]}},
          {"name":"Name","type":["null","string"],"default":null},
          {"name":"Phone","type":["null","string"],"default":null},
          {"name":"BillingAddress","type":["null",{"type":"record","name":"Address","fields":[
            {"name":"Street","type":["null","string"],"default":null},
            {"name":"City","type":["null","string"],"default":null}]}],"default":null},
          {"name":"LastModifiedDate","type":["null","long"],"default":null}]}
        """;

    [Theory]
    [InlineData(new[] { "0x0D" }, new[] { 0, 2, 3 })]
    [InlineData(new[] { "0x650004E0" }, new[] { 5, 6, 7, 10, 24, 26, 29, 30 })]
    [InlineData(new string[0], new int[0])]
    public void Bitmap_TopLevel_SetsBitIForFieldAtPositionI(string[] bitmap, int[] positions)
    {
        var (fields, nested) = ChangeEventBitmap.Decode(bitmap);

        Assert.Equal(positions, fields.Order());
        Assert.Empty(nested);
    }

    [Fact]
    public void Bitmap_CompoundElement_NamesComponentsOfTheFieldAtItsPosition()
    {
        var (fields, nested) = ChangeEventBitmap.Decode(["0x10", "3-0x02"]);

        Assert.Equal([4], fields);
        Assert.Equal([1], nested[3]);
    }

    [Fact]
    public void Decode_Update_KeepsOnlyChangedAndNulledFieldsWithCompoundsFlattened()
    {
        var schema = (RecordSchema)Avro.Schema.Parse(SchemaJson);
        // Phone (2) nulled, LastModifiedDate (4) changed, BillingAddress.City (3-1) changed; Name unchanged.
        var payload = Encode(schema, "UPDATE", changed: ["0x14", "3-0x02"], nulled: ["0x04"], name: "Unchanged Name", phone: null, city: "Lyon", modified: 1_767_000_000_123, origin: "com/salesforce/api/rest/61.0;client=CdcSyncabc");

        var change = ChangeEventDecoder.Decode(schema, payload);

        Assert.Equal("Account", change.EntityName);
        Assert.Equal("UPDATE", change.ChangeType);
        Assert.Equal(["001000000000001AAA"], change.RecordIds);
        Assert.Equal(["BillingCity", "LastModifiedDate", "Phone"], change.Fields.Keys.Order(StringComparer.Ordinal));
        Assert.Null(change.Fields["Phone"]);
        Assert.Equal("Lyon", change.Fields["BillingCity"]);
        Assert.Equal(1_767_000_000_123L, change.Fields["LastModifiedDate"]);
        Assert.True(SalesforceClientId.IsOrigin(change.ChangeOrigin, "CdcSyncabc"));
        Assert.False(SalesforceClientId.IsOrigin(change.ChangeOrigin, "CdcSyncab"));
    }

    [Fact]
    public void Decode_Create_KeepsEveryPopulatedField()
    {
        var schema = (RecordSchema)Avro.Schema.Parse(SchemaJson);
        var payload = Encode(schema, "CREATE", changed: [], nulled: [], name: "Acme", phone: "555", city: "Lyon", modified: 1, origin: "");

        var change = ChangeEventDecoder.Decode(schema, payload);

        Assert.Equal(["BillingCity", "LastModifiedDate", "Name", "Phone"], change.Fields.Keys.Order(StringComparer.Ordinal));
        Assert.False(change.IsGap);
    }

    [Fact]
    public void Decode_GapOverflow_IsAGapWithNoFields()
    {
        var schema = (RecordSchema)Avro.Schema.Parse(SchemaJson);

        var change = ChangeEventDecoder.Decode(schema, Encode(schema, "GAP_OVERFLOW", [], [], null, null, null, null, ""));

        Assert.True(change.IsGap);
        Assert.Empty(change.Fields);
    }

    private static byte[] Encode(RecordSchema schema, string changeType, string[] changed, string[] nulled, string? name, string? phone, string? city, long? modified, string origin)
    {
        var headerSchema = (RecordSchema)schema["ChangeEventHeader"].Schema;
        var header = new GenericRecord(headerSchema);
        header.Add("entityName", "Account");
        header.Add("recordIds", new object[] { "001000000000001AAA" });
        header.Add("changeType", new GenericEnum((EnumSchema)headerSchema["changeType"].Schema, changeType));
        header.Add("changeOrigin", origin);
        header.Add("transactionKey", "tx");
        header.Add("sequenceNumber", 1);
        header.Add("commitTimestamp", 1_767_000_000_000L);
        header.Add("commitNumber", 42L);
        header.Add("commitUser", "005000000000001AAA");
        header.Add("nulledFields", nulled.Cast<object>().ToArray());
        header.Add("diffFields", Array.Empty<object>());
        header.Add("changedFields", changed.Cast<object>().ToArray());
        var addressSchema = ((UnionSchema)schema["BillingAddress"].Schema).Schemas.OfType<RecordSchema>().Single();
        var address = new GenericRecord(addressSchema);
        address.Add("Street", null);
        address.Add("City", city);
        var record = new GenericRecord(schema);
        record.Add("ChangeEventHeader", header);
        record.Add("Name", name);
        record.Add("Phone", phone);
        record.Add("BillingAddress", city is null ? null : address);
        record.Add("LastModifiedDate", modified);
        using var stream = new MemoryStream();
        new GenericDatumWriter<GenericRecord>(schema).Write(record, new BinaryEncoder(stream));
        return stream.ToArray();
    }
}
