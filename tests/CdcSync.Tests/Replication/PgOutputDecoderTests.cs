using System.Buffers.Binary;
using System.Text;
using CdcSync.Replication;
using NpgsqlTypes;

namespace CdcSync.Tests.Replication;

/// <summary>
/// The pgoutput decoder on messages built byte by byte after "Logical Replication Message Formats"
/// (protocol 1 and 2), so the format is pinned without a server.
/// </summary>
public sealed class PgOutputDecoderTests
{
    private const uint Accounts = 16384;
    private const uint Orders = 16390;
    private const uint Int4 = 23;
    private const uint Int8 = 20;
    private const uint Text = 25;

    private static readonly DateTime CommitTime = new DateTime(2026, 3, 1, 10, 0, 0, DateTimeKind.Utc).AddTicks(1230);

    [Fact]
    public void Begin_InsertsAndCommit_ShareOneTransactionWithBeginsLsnTimeAndXid()
    {
        var decoder = new PgOutputDecoder();

        var begin = decoder.Decode(Begin(finalLsn: 0x16_B374_D848, CommitTime, xid: 741));
        Assert.Equal(PgOutputMessageKind.Begin, begin.Kind);
        Assert.Equal(741u, begin.Xid);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x16_B374_D848), begin.CommitLsn);
        Assert.Equal(CommitTime, begin.CommitTime);

        decoder.Decode(AccountsRelation());
        var first = Single(decoder.Decode(Msg('I').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(7)), Bin("Zoë"u8), Bin(Int64Bytes(-42)))));
        var second = Single(decoder.Decode(Msg('I').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(8)), Bin("Ann"u8), Bin(Int64Bytes(5_000_000_000)))));

        Assert.Equal(ChangeKind.Insert, first.Kind);
        Assert.Equal("public.accounts", first.Relation.QualifiedName);
        Assert.Null(first.Old);
        Assert.Equal(7, first.New!.GetValue(first.Relation, "id"));
        Assert.Equal("Zoë", first.New.GetValue(first.Relation, "name"));
        Assert.Equal(-42L, first.New.GetValue(first.Relation, "balance"));
        Assert.Equal(ValueKind.Binary, first.New.KindAt(0));
        Assert.Equal(5_000_000_000L, second.New!.GetValue(second.Relation, "balance"));
        Assert.Equal(0, first.Position);
        Assert.Equal(1, second.Position);
        Assert.Same(first.Transaction, second.Transaction);
        Assert.Equal(new TransactionInfo(741, new NpgsqlLogSequenceNumber(0x16_B374_D848), CommitTime, null), first.Transaction);

        var commit = decoder.Decode(Commit(commitLsn: 0x16_B374_D848, endLsn: 0x16_B374_D878, CommitTime));
        Assert.Equal(PgOutputMessageKind.Commit, commit.Kind);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x16_B374_D848), commit.CommitLsn);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x16_B374_D878), commit.EndLsn);
        Assert.Same(first.Transaction, commit.Transaction);

        // The next transaction numbers its changes from 0 again.
        decoder.Decode(Begin(finalLsn: 0x17_0000_0000, CommitTime, xid: 742));
        var next = Single(decoder.Decode(Msg('I').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(9)), Null(), Null())));
        Assert.Equal(0, next.Position);
        Assert.Equal(742u, next.Transaction.Xid);
        Assert.NotSame(first.Transaction, next.Transaction);
    }

    [Fact]
    public void Insert_TextTuple_KeepsTextAndDecodesByColumnType()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 1));
        decoder.Decode(AccountsRelation());

        var insert = Single(decoder.Decode(Msg('I').UInt32(Accounts).Byte('N').Tuple(Txt("42"), Txt("O'Brien"), Txt("-9000000000"))));

        Assert.True(insert.New!.HasText);
        Assert.Equal(ValueKind.Text, insert.New.KindAt(1));
        Assert.Equal(42, insert.New.GetValue(insert.Relation, "id"));
        Assert.Equal("O'Brien", insert.New.GetValue(insert.Relation, "name"));
        Assert.Equal(-9_000_000_000L, insert.New.GetValue(insert.Relation, "balance"));
        Assert.Equal("O'Brien"u8.ToArray(), insert.New.RawAt(1).ToArray());
    }

    [Fact]
    public void Update_WithOldKey_WithOldRow_OrWithoutOld_SetsOldAccordingly()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 1));
        decoder.Decode(AccountsRelation());

        // 'K': the key changed (REPLICA IDENTITY DEFAULT): only key columns are set, the rest null.
        var keyChanged = Single(decoder.Decode(Msg('U').UInt32(Accounts)
            .Byte('K').Tuple(Bin(Int32Bytes(7)), Null(), Null())
            .Byte('N').Tuple(Bin(Int32Bytes(70)), Bin("Zoë"u8), Bin(Int64Bytes(1)))));
        Assert.Equal(ChangeKind.Update, keyChanged.Kind);
        Assert.Equal(7, keyChanged.Old!.GetValue(keyChanged.Relation, "id"));
        Assert.True(keyChanged.Old.IsNull(1));
        Assert.Equal(70, keyChanged.New!.GetValue(keyChanged.Relation, "id"));
        Assert.Same(keyChanged.Old, keyChanged.Key);

        // 'O': REPLICA IDENTITY FULL sends the whole old row.
        var full = Single(decoder.Decode(Msg('U').UInt32(Accounts)
            .Byte('O').Tuple(Bin(Int32Bytes(70)), Bin("Zoë"u8), Bin(Int64Bytes(1)))
            .Byte('N').Tuple(Bin(Int32Bytes(70)), Bin("Zoe"u8), Bin(Int64Bytes(2)))));
        Assert.Equal("Zoë", full.Old!.GetValue(full.Relation, "name"));
        Assert.Equal(1L, full.Old.GetValue(full.Relation, "balance"));
        Assert.Equal("Zoe", full.New!.GetValue(full.Relation, "name"));
        Assert.Equal(2L, full.New.GetValue(full.Relation, "balance"));

        // No old tuple: the key did not change; the new row is the key.
        var plain = Single(decoder.Decode(Msg('U').UInt32(Accounts)
            .Byte('N').Tuple(Bin(Int32Bytes(70)), Bin("Zoe"u8), Bin(Int64Bytes(3)))));
        Assert.Null(plain.Old);
        Assert.Same(plain.New, plain.Key);
        Assert.Equal(3L, plain.New!.GetValue(plain.Relation, "balance"));
        Assert.Equal((0, 1, 2), (keyChanged.Position, full.Position, plain.Position));
    }

    [Fact]
    public void Update_UnchangedToastAndNull_AreTwoDifferentThings()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 1));
        decoder.Decode(AccountsRelation());

        var update = Single(decoder.Decode(Msg('U').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(7)), Unchanged(), Null())));

        var row = update.New!;
        Assert.Equal(3, row.Count);
        Assert.True(row.IsUnchanged(1));
        Assert.False(row.IsNull(1));
        Assert.True(row.IsNull(2));
        Assert.Null(row.GetValue(update.Relation, "balance"));
        Assert.Equal(0, row.RawAt(1).Length);
        Assert.Equal(4, row.ByteSize);
        var error = Assert.Throws<InvalidOperationException>(() => row.GetValue(update.Relation, "name"));
        Assert.Contains("'name'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Delete_CarriesTheOldKeyAndNoNewRow()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 1));
        decoder.Decode(AccountsRelation());

        var delete = Single(decoder.Decode(Msg('D').UInt32(Accounts).Byte('K').Tuple(Bin(Int32Bytes(7)), Null(), Null())));

        Assert.Equal(ChangeKind.Delete, delete.Kind);
        Assert.Null(delete.New);
        Assert.Equal(7, delete.Old!.GetValue(delete.Relation, "id"));
        Assert.Same(delete.Old, delete.Key);
    }

    [Fact]
    public void Truncate_OneEventPerTable_InMessageOrder()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 1));
        decoder.Decode(AccountsRelation());
        decoder.Decode(OrdersRelation());

        var truncate = decoder.Decode(Msg('T').Int32(2).Byte(1).UInt32(Orders).UInt32(Accounts));

        Assert.Equal(PgOutputMessageKind.Change, truncate.Kind);
        Assert.Equal(2, truncate.Changes!.Count);
        Assert.Equal(new[] { "public.orders", "public.accounts" }, truncate.Changes.Select(c => c.Relation.QualifiedName));
        Assert.All(truncate.Changes, c => Assert.Equal(ChangeKind.Truncate, c.Kind));
        Assert.All(truncate.Changes, c => Assert.Null(c.Key));
        Assert.Equal(new[] { 0, 1 }, truncate.Changes.Select(c => c.Position));
    }

    [Fact]
    public void Commit_OfATransactionWithoutChanges_TakesLsnAndTimeFromTheCommit()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(finalLsn: 0x100, CommitTime, xid: 55));
        var message = decoder.Decode(Msg('M').Byte(1).UInt64(0x100).String("cdcsync.heartbeat").Int32(1).Byte((byte)'x'));
        Assert.Equal(PgOutputMessageKind.Ignored, message.Kind);

        var commit = decoder.Decode(Commit(commitLsn: 0x108, endLsn: 0x140, CommitTime.AddSeconds(1)));

        Assert.Equal(new TransactionInfo(55, new NpgsqlLogSequenceNumber(0x108), CommitTime.AddSeconds(1), null), commit.Transaction);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x140), commit.EndLsn);
    }

    [Fact]
    public void Origin_AfterBegin_NamesTheTransactionsOrigin()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 9));

        var origin = decoder.Decode(Msg('O').UInt64(0xABC).String("cdcsync_salesforce"));
        Assert.Equal(PgOutputMessageKind.Origin, origin.Kind);
        Assert.Equal("cdcsync_salesforce", origin.Origin);

        decoder.Decode(AccountsRelation());
        var insert = Single(decoder.Decode(Msg('I').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(1)), Null(), Null())));
        Assert.Equal("cdcsync_salesforce", insert.Transaction.Origin);
        Assert.Equal("cdcsync_salesforce", decoder.Decode(Commit(1, 2, CommitTime)).Transaction!.Origin);

        // The next transaction has no origin unless one is sent again.
        decoder.Decode(Begin(3, CommitTime, 10));
        Assert.Null(decoder.Decode(Commit(3, 4, CommitTime)).Transaction!.Origin);
    }

    [Fact]
    public void Stream_MessagesCarryTheirXid_ChangesWaitForTheCommitAndTheOuterTransactionIsUntouched()
    {
        var decoder = new PgOutputDecoder();

        var start = decoder.Decode(Msg('S').UInt32(900).Byte(1));
        Assert.Equal(PgOutputMessageKind.StreamStart, start.Kind);
        Assert.Equal(900u, start.Xid);

        // Inside the block, Relation and every change start with the (sub)transaction's xid.
        var relation = decoder.Decode(Msg('R').UInt32(900).UInt32(Accounts).String("public").String("accounts").Byte('d').Int16(3)
            .Byte(1).String("id").UInt32(Int4).Int32(-1)
            .Byte(0).String("name").UInt32(Text).Int32(-1)
            .Byte(0).String("balance").UInt32(Int8).Int32(-1));
        Assert.Equal(Accounts, relation.Relation!.Id);
        Assert.Same(relation.Relation, decoder.Relations[Accounts]);

        var origin = decoder.Decode(Msg('O').UInt64(0xABC).String("cdcsync_netsuite"));
        Assert.Equal("cdcsync_netsuite", origin.Origin);

        var top = decoder.Decode(Msg('I').UInt32(900).UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(1)), Bin("a"u8), Null()));
        Assert.Equal(900u, top.Xid);
        var inserted = Single(top);
        var sub = decoder.Decode(Msg('D').UInt32(901).UInt32(Accounts).Byte('K').Tuple(Bin(Int32Bytes(2)), Null(), Null()));
        Assert.Equal(901u, sub.Xid);
        var deleted = Single(sub);
        Assert.Equal(1, inserted.New!.GetValue(inserted.Relation, "id"));
        Assert.Equal("a", inserted.New.GetValue(inserted.Relation, "name"));
        Assert.Equal(2, deleted.Old!.GetValue(deleted.Relation, "id"));

        // Commit LSN and time are unknown until the stream commits: the spool replays under the real
        // transaction and numbers the changes then.
        Assert.Equal(new TransactionInfo(0, default, default, null), inserted.Transaction);
        Assert.Equal((0, 0), (inserted.Position, deleted.Position));

        Assert.Equal(PgOutputMessageKind.StreamStop, decoder.Decode(Msg('E')).Kind);

        var abortSub = decoder.Decode(Msg('A').UInt32(900).UInt32(901));
        Assert.Equal(PgOutputMessageKind.StreamAbort, abortSub.Kind);
        Assert.Equal((900u, 901u), (abortSub.Xid, abortSub.SubXid));

        var commit = decoder.Decode(Msg('c').UInt32(900).Byte(0).UInt64(0x2_0000_1000).UInt64(0x2_0000_1040).Int64(Micros(CommitTime)));
        Assert.Equal(PgOutputMessageKind.StreamCommit, commit.Kind);
        Assert.Equal(900u, commit.Xid);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x2_0000_1000), commit.CommitLsn);
        Assert.Equal(new NpgsqlLogSequenceNumber(0x2_0000_1040), commit.EndLsn);
        Assert.Equal(CommitTime, commit.CommitTime);

        var abortAll = decoder.Decode(Msg('A').UInt32(902).UInt32(902));
        Assert.Equal((902u, 902u), (abortAll.Xid, abortAll.SubXid));

        // After Stream Stop, messages have no xid in front again, and the stream's origin did not leak.
        decoder.Decode(Begin(0x3_0000_0000, CommitTime, 950));
        var after = Single(decoder.Decode(Msg('I').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(3)), Null(), Null())));
        Assert.Equal(3, after.New!.GetValue(after.Relation, "id"));
        Assert.Equal(new TransactionInfo(950, new NpgsqlLogSequenceNumber(0x3_0000_0000), CommitTime, null), after.Transaction);
        Assert.Equal(0, after.Position);
    }

    [Fact]
    public void Relation_SameShapeKeepsTheInstance_AnotherShapeReplacesItAndSaysSo()
    {
        var decoder = new PgOutputDecoder();

        var described = decoder.Decode(AccountsRelation());
        Assert.Equal(PgOutputMessageKind.Relation, described.Kind);
        Assert.False(described.ShapeChanged);
        var accounts = described.Relation!;
        Assert.Equal(("public", "accounts", 'd'), (accounts.Schema, accounts.Name, accounts.ReplicaIdentity));
        Assert.Equal(
            new[] { new ColumnInfo("id", Int4, -1, true), new ColumnInfo("name", Text, -1, false), new ColumnInfo("balance", Int8, -1, false) },
            accounts.Columns);

        var again = decoder.Decode(AccountsRelation());
        Assert.False(again.ShapeChanged);
        Assert.Same(accounts, again.Relation);

        var altered = decoder.Decode(Msg('R').UInt32(Accounts).String("public").String("accounts").Byte('f').Int16(2)
            .Byte(1).String("id").UInt32(Int4).Int32(-1)
            .Byte(0).String("note").UInt32(1043).Int32(68));
        Assert.True(altered.ShapeChanged);
        Assert.NotSame(accounts, altered.Relation);
        Assert.Same(altered.Relation, decoder.Relations[Accounts]);
        Assert.Equal(new ColumnInfo("note", 1043, 68, false), altered.Relation!.Columns[1]);
        Assert.Equal('f', altered.Relation.ReplicaIdentity);
    }

    [Fact]
    public void Change_OfATableNotYetDescribed_Throws()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(Begin(1, CommitTime, 1));

        var error = Assert.Throws<InvalidOperationException>(() => decoder.Decode(Msg('I').UInt32(777).Byte('N').Tuple(Null())));

        Assert.Contains("relation 777", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TypeMessage_IsIgnored()
    {
        var decoder = new PgOutputDecoder();

        var type = decoder.Decode(Msg('Y').UInt32(600).String("public").String("point"));

        Assert.Equal(PgOutputMessageKind.Ignored, type.Kind);
        Assert.Empty(decoder.Relations);
    }

    [Fact]
    public void Decode_TransactionAndStreamMarkers_AllocateNothing()
    {
        var decoder = new PgOutputDecoder();
        decoder.Decode(AccountsRelation());
        byte[] begin = Begin(0x100, CommitTime, 1);
        byte[] insert = Msg('I').UInt32(Accounts).Byte('N').Tuple(Bin(Int32Bytes(7)), Null(), Null());
        byte[] commit = Commit(0x100, 0x140, CommitTime);
        byte[] start = Msg('S').UInt32(900).Byte(1);
        byte[] stop = Msg('E');
        for (var warm = 0; warm < 3; warm++)
        {
            decoder.Decode(begin);
            decoder.Decode(insert);
            decoder.Decode(commit);
            decoder.Decode(start);
            decoder.Decode(stop);
        }

        // The reader decodes every WAL message; markers must cost no garbage (the transaction's
        // TransactionInfo is made once, by its first change).
        decoder.Decode(begin);
        decoder.Decode(insert);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var kinds = (decoder.Decode(commit).Kind, decoder.Decode(begin).Kind, decoder.Decode(start).Kind, decoder.Decode(stop).Kind);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal((PgOutputMessageKind.Commit, PgOutputMessageKind.Begin, PgOutputMessageKind.StreamStart, PgOutputMessageKind.StreamStop), kinds);
        Assert.Equal(0, allocated);
    }

    private static ChangeEvent Single(PgOutputMessage message)
    {
        Assert.Equal(PgOutputMessageKind.Change, message.Kind);
        return Assert.Single(message.Changes!);
    }

    private static byte[] Begin(ulong finalLsn, DateTime commitTime, uint xid) =>
        Msg('B').UInt64(finalLsn).Int64(Micros(commitTime)).UInt32(xid);

    private static byte[] Commit(ulong commitLsn, ulong endLsn, DateTime commitTime) =>
        Msg('C').Byte(0).UInt64(commitLsn).UInt64(endLsn).Int64(Micros(commitTime));

    /// <summary>public.accounts (id int4 primary key, name text, balance int8), replica identity default.</summary>
    private static byte[] AccountsRelation() =>
        Msg('R').UInt32(Accounts).String("public").String("accounts").Byte('d').Int16(3)
            .Byte(1).String("id").UInt32(Int4).Int32(-1)
            .Byte(0).String("name").UInt32(Text).Int32(-1)
            .Byte(0).String("balance").UInt32(Int8).Int32(-1);

    private static byte[] OrdersRelation() =>
        Msg('R').UInt32(Orders).String("public").String("orders").Byte('d').Int16(1)
            .Byte(1).String("id").UInt32(Int8).Int32(-1);

    private static long Micros(DateTime utc) => (utc - new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)).Ticks / 10;

    private static byte[] Int32Bytes(int value)
    {
        var raw = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(raw, value);
        return raw;
    }

    private static byte[] Int64Bytes(long value)
    {
        var raw = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(raw, value);
        return raw;
    }

    private static Column Bin(ReadOnlySpan<byte> value) => new('b', value.ToArray());

    private static Column Txt(string value) => new('t', Encoding.UTF8.GetBytes(value));

    private static Column Null() => new('n', null);

    private static Column Unchanged() => new('u', null);

    private static Message Msg(char tag) => new Message().Byte((byte)tag);

    /// <summary>One TupleData column: its kind byte and, for 't' and 'b', its bytes.</summary>
    private sealed record Column(char Kind, byte[]? Value);

    /// <summary>Writes a pgoutput message the way the server does: network byte order, strings NUL-terminated.</summary>
    private sealed class Message
    {
        private readonly List<byte> _bytes = [];

        public static implicit operator byte[](Message message) => [.. message._bytes];

        public Message Byte(byte value)
        {
            _bytes.Add(value);
            return this;
        }

        public Message Byte(char value) => Byte((byte)value);

        public Message Int16(short value) => Put(2, span => BinaryPrimitives.WriteInt16BigEndian(span, value));

        public Message Int32(int value) => Put(4, span => BinaryPrimitives.WriteInt32BigEndian(span, value));

        public Message UInt32(uint value) => Put(4, span => BinaryPrimitives.WriteUInt32BigEndian(span, value));

        public Message Int64(long value) => Put(8, span => BinaryPrimitives.WriteInt64BigEndian(span, value));

        public Message UInt64(ulong value) => Put(8, span => BinaryPrimitives.WriteUInt64BigEndian(span, value));

        public Message String(string value)
        {
            _bytes.AddRange(Encoding.UTF8.GetBytes(value));
            return Byte(0);
        }

        /// <summary>TupleData: Int16 column count, then each column.</summary>
        public Message Tuple(params Column[] columns)
        {
            Int16((short)columns.Length);
            foreach (var column in columns)
            {
                Byte(column.Kind);
                if (column.Value is not null)
                {
                    Int32(column.Value.Length);
                    _bytes.AddRange(column.Value);
                }
            }

            return this;
        }

        private Message Put(int size, SpanAction write)
        {
            Span<byte> span = stackalloc byte[size];
            write(span);
            _bytes.AddRange(span);
            return this;
        }

        private delegate void SpanAction(Span<byte> span);
    }
}
