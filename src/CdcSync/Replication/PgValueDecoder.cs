using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace CdcSync.Replication;

/// <summary>
/// Decodes PostgreSQL's binary send format for the types staging tables use. The PostgreSQL
/// connector never calls this: it passes the bytes to COPY BINARY unchanged.
/// </summary>
internal static class PgValueDecoder
{
    private static readonly DateTime PgEpoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public static object DecodeBinary(ColumnInfo column, ReadOnlySpan<byte> raw) => DecodeBinary(column.TypeOid, raw, column.Name);

    public static object DecodeBinary(uint typeOid, ReadOnlySpan<byte> raw, string columnName = "?")
    {
        switch (typeOid)
        {
            case 16: return raw[0] != 0;
            case 17: return raw.ToArray();
            case 18: return ((char)raw[0]).ToString();
            case 20: return BinaryPrimitives.ReadInt64BigEndian(raw);
            case 21: return BinaryPrimitives.ReadInt16BigEndian(raw);
            case 23: return BinaryPrimitives.ReadInt32BigEndian(raw);
            case 26: return BinaryPrimitives.ReadUInt32BigEndian(raw);
            case 19 or 25 or 114 or 142 or 1042 or 1043: return Encoding.UTF8.GetString(raw);
            case 3802: return Encoding.UTF8.GetString(raw[1..]); // jsonb: version byte, then text
            case 700: return BinaryPrimitives.ReadSingleBigEndian(raw);
            case 701: return BinaryPrimitives.ReadDoubleBigEndian(raw);
            case 1082: return DateOnly.FromDateTime(PgEpoch.AddDays(BinaryPrimitives.ReadInt32BigEndian(raw)));
            case 1083: return TimeSpan.FromMicroseconds(BinaryPrimitives.ReadInt64BigEndian(raw));
            case 1114: return DateTime.SpecifyKind(PgEpoch.AddTicks(BinaryPrimitives.ReadInt64BigEndian(raw) * 10), DateTimeKind.Unspecified);
            case 1184: return PgEpoch.AddTicks(BinaryPrimitives.ReadInt64BigEndian(raw) * 10);
            case 1700: return DecodeNumeric(raw);
            case 2950: return ReadUuid(raw);
            case 3220: return new NpgsqlTypes.NpgsqlLogSequenceNumber(BinaryPrimitives.ReadUInt64BigEndian(raw)).ToString();
            case 1000 or 1005 or 1007 or 1016 or 1009 or 1015 or 1021 or 1022 or 1231 or 2951 or 3807 or 199 or 1182 or 1185 or 1001:
                return DecodeArray(raw, columnName);
            default:
                throw new NotSupportedException(
                    $"Column '{columnName}' has PostgreSQL type oid {typeOid}, which CdcSync cannot decode for this connector; cast it to text, numeric, jsonb or timestamptz in the staging table.");
        }
    }

    public static object DecodeText(ColumnInfo column, string text) => column.TypeOid switch
    {
        16 => text == "t",
        20 => long.Parse(text, CultureInfo.InvariantCulture),
        21 => short.Parse(text, CultureInfo.InvariantCulture),
        23 => int.Parse(text, CultureInfo.InvariantCulture),
        700 => float.Parse(text, CultureInfo.InvariantCulture),
        701 => double.Parse(text, CultureInfo.InvariantCulture),
        1700 => decimal.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        1184 => DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal),
        2950 => Guid.Parse(text),
        _ => text,
    };

    private static Guid ReadUuid(ReadOnlySpan<byte> raw) => new(raw, bigEndian: true);

    private static object DecodeNumeric(ReadOnlySpan<byte> raw)
    {
        var ndigits = BinaryPrimitives.ReadInt16BigEndian(raw);
        var weight = BinaryPrimitives.ReadInt16BigEndian(raw[2..]);
        var sign = BinaryPrimitives.ReadUInt16BigEndian(raw[4..]);
        var dscale = BinaryPrimitives.ReadInt16BigEndian(raw[6..]);
        if (sign == 0xC000)
        {
            return double.NaN;
        }

        if (sign is 0xD000 or 0xF000)
        {
            return sign == 0xD000 ? double.PositiveInfinity : double.NegativeInfinity;
        }

        var sb = new StringBuilder();
        if (sign == 0x4000)
        {
            sb.Append('-');
        }

        // Base-10000 digits; the first has weight `weight`.
        var intGroups = weight + 1;
        if (intGroups <= 0)
        {
            sb.Append('0');
        }
        else
        {
            for (var i = 0; i < intGroups; i++)
            {
                var d = i < ndigits ? BinaryPrimitives.ReadInt16BigEndian(raw[(8 + (2 * i))..]) : (short)0;
                sb.Append(i == 0 ? d.ToString(CultureInfo.InvariantCulture) : d.ToString("D4", CultureInfo.InvariantCulture));
            }
        }

        if (dscale > 0)
        {
            var frac = new StringBuilder();
            for (var g = intGroups; frac.Length < dscale; g++)
            {
                var d = g >= 0 && g < ndigits ? BinaryPrimitives.ReadInt16BigEndian(raw[(8 + (2 * g))..]) : (short)0;
                frac.Append(d.ToString("D4", CultureInfo.InvariantCulture));
            }

            sb.Append('.').Append(frac.ToString(0, dscale));
        }

        var text = sb.ToString();
        return decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : double.Parse(text, CultureInfo.InvariantCulture);
    }

    private static object DecodeArray(ReadOnlySpan<byte> raw, string columnName)
    {
        var ndim = BinaryPrimitives.ReadInt32BigEndian(raw);
        var elementOid = BinaryPrimitives.ReadUInt32BigEndian(raw[8..]);
        if (ndim == 0)
        {
            return Array.Empty<object?>();
        }

        if (ndim != 1)
        {
            throw new NotSupportedException($"Column '{columnName}' holds a {ndim}-dimensional array; CdcSync decodes one-dimensional arrays only for this connector.");
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(raw[12..]);
        var pos = 20;
        var result = new object?[count];
        for (var i = 0; i < count; i++)
        {
            var len = BinaryPrimitives.ReadInt32BigEndian(raw[pos..]);
            pos += 4;
            if (len < 0)
            {
                result[i] = null;
                continue;
            }

            result[i] = DecodeBinary(elementOid, raw.Slice(pos, len), columnName);
            pos += len;
        }

        return result;
    }
}
