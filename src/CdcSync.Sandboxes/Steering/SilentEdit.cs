using System.Text.Json.Nodes;

namespace CdcSync.Sandboxes.Steering;

/// <summary>
/// The body of <c>POST /_sandbox/silent-edit</c>: a change made behind the API's change tracking,
/// as a data loader, a restore from backup or a bug would make it. <c>{"type": "customer", "id":
/// "101", "fields": {"phone": "..."}}</c> sets fields without moving the modified stamp;
/// <c>{"type": "Account", "id": "001...", "delete": true}</c> removes the record without a trace
/// (no tombstone, no recycle bin, no deleted-record entry). Neither counts as an API write.
/// </summary>
internal sealed record SilentEdit(string Type, string Id, JsonObject? Fields, bool Delete)
{
    public static SilentEdit Parse(JsonObject body)
    {
        SteeringKnobs.RejectUnknown(body, "", "type", "id", "fields", "delete");
        var type = SteeringKnobs.Text(body["type"], "type") is { Length: > 0 } t ? t : throw new SteeringException("type: required, the record type (e.g. \"Account\", \"customer\").");
        var id = body["id"] switch
        {
            JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.Number => v.ToJsonString(),
            var other => SteeringKnobs.Text(other, "id") is { Length: > 0 } s ? s : throw new SteeringException("id: required, the record's id."),
        };
        var delete = body["delete"] is { } d && SteeringKnobs.Bool(d, "delete");
        var fields = body["fields"] switch
        {
            null => null,
            JsonObject o => o,
            var other => throw new SteeringException($"fields: expected an object of field names and values, got {other.ToJsonString()}."),
        };
        if (delete == (fields is not null))
        {
            throw new SteeringException("give either \"fields\": {...} or \"delete\": true.");
        }

        if (fields is { Count: 0 })
        {
            throw new SteeringException("fields: name at least one field to change.");
        }

        return new SilentEdit(type, id, fields, delete);
    }
}
