using System.Buffers.Binary;
using System.Text;
using CdcSync.Replication;

namespace CdcSync.Tests.Replication;

/// <summary>The pgoutput value decoder, on PostgreSQL's binary and text forms (no server needed).</summary>
public sealed class PgValueDecoderTests
{
    [Fact]
    public void DecodeBinary_Integers_Booleans_Text_Jsonb_Uuid()
    {
        Assert.Equal(-42L, PgValueDecoder.DecodeBinary(20, BigEndian64(-42)));
        Assert.Equal(7, PgValueDecoder.DecodeBinary(23, [0, 0, 0, 7]));
        Assert.Equal((short)-2, PgValueDecoder.DecodeBinary(21, [0xFF, 0xFE]));
        Assert.Equal(true, PgValueDecoder.DecodeBinary(16, [1]));
        Assert.Equal("Zoë", PgValueDecoder.DecodeBinary(25, Encoding.UTF8.GetBytes("Zoë")));
        Assert.Equal("{\"a\": 1}", PgValueDecoder.DecodeBinary(3802, [1, .. Encoding.UTF8.GetBytes("{\"a\": 1}")]));
        var id = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        Assert.Equal(id, PgValueDecoder.DecodeBinary(2950, id.ToByteArray(bigEndian: true)));
    }

    [Fact]
    public void DecodeBinary_Timestamps_CountMicrosecondsFrom2000()
    {
        var micros = (long)(new DateTime(2026, 3, 1, 10, 0, 0, DateTimeKind.Utc) - new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalMicroseconds + 123;
        var value = (DateTime)PgValueDecoder.DecodeBinary(1184, BigEndian64(micros));
        Assert.Equal(new DateTime(2026, 3, 1, 10, 0, 0, DateTimeKind.Utc).AddTicks(1230), value);
        Assert.Equal(DateTimeKind.Utc, value.Kind);
        Assert.Equal(DateTimeKind.Unspecified, ((DateTime)PgValueDecoder.DecodeBinary(1114, BigEndian64(micros))).Kind);
        Assert.Equal(new DateOnly(2000, 1, 31), PgValueDecoder.DecodeBinary(1082, [0, 0, 0, 30]));
    }

    [Fact]
    public void DecodeBinary_Numeric_KeepsScaleAndSign()
    {
        // 1234.50: two base-10000 digits (1234, 5000), weight 0, positive, dscale 2.
        byte[] raw = [0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xD2, 0x13, 0x88];
        Assert.Equal(1234.50m, Convert.ToDecimal(PgValueDecoder.DecodeBinary(1700, raw)));
        Assert.Equal("1234.50", Convert.ToDecimal(PgValueDecoder.DecodeBinary(1700, raw)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        byte[] negative = [0, 1, 0, 0, 0x40, 0, 0, 0, 0, 7];
        Assert.Equal(-7m, Convert.ToDecimal(PgValueDecoder.DecodeBinary(1700, negative)));
    }

    [Fact]
    public void DecodeBinary_AnUnknownType_NamesTheColumnAndTheFix()
    {
        var error = Assert.Throws<NotSupportedException>(() => PgValueDecoder.DecodeBinary(600, [0], "location"));
        Assert.Contains("'location'", error.Message, StringComparison.Ordinal);
        Assert.Contains("cast it to text", error.Message, StringComparison.Ordinal);
    }

    private static byte[] BigEndian64(long value)
    {
        var raw = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(raw, value);
        return raw;
    }
}
