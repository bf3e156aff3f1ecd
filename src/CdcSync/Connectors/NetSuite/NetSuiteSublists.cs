using System.Text.Json.Nodes;

namespace CdcSync.Connectors.NetSuite;

/// <summary>
/// Sublists (the address book, any list a transform maps) are merged line by line, never replaced
/// wholesale: NetSuite may hold lines the hub does not know about (added by a user since the last
/// read), and a write from the other side must leave them alone.
/// </summary>
internal static class NetSuiteSublists
{
    /// <summary>Lines without the record service's navigation links, which are not data.</summary>
    public static JsonArray Clean(JsonArray items)
    {
        var result = new JsonArray();
        foreach (var item in items)
        {
            result.Add(Strip(item?.DeepClone()));
        }

        return result;
    }

    /// <summary>
    /// NetSuite's current lines with the hub's change applied: lines the hub removed (in
    /// <paramref name="before"/>, not in <paramref name="after"/>) go, lines it added or changed are
    /// put in place of the line with the same key or appended; every other NetSuite line stays.
    /// </summary>
    public static JsonArray Merge(JsonArray? before, JsonArray after, JsonArray current, string? keyField)
    {
        var beforeByKey = Index(before ?? [], keyField);
        var afterByKey = Index(after, keyField);
        var result = new List<JsonNode?>();
        foreach (var line in current)
        {
            var key = Key(line, keyField);
            if (key is not null && beforeByKey.ContainsKey(key) && !afterByKey.ContainsKey(key))
            {
                continue; // removed in the hub
            }

            result.Add(line?.DeepClone());
        }

        foreach (var (key, line) in afterByKey)
        {
            if (beforeByKey.TryGetValue(key, out var old) && JsonNode.DeepEquals(old, line))
            {
                continue; // unchanged in the hub: NetSuite's version of the line stands
            }

            var index = result.FindIndex(l => Key(l, keyField) == key);
            var merged = line.DeepClone();
            if (index >= 0)
            {
                // Keep NetSuite's line id so the line is updated in place, not re-created.
                if (result[index]?["id"] is { } id && merged is JsonObject o && o["id"] is null)
                {
                    o["id"] = id.DeepClone();
                }

                result[index] = merged;
            }
            else
            {
                result.Add(merged);
            }
        }

        return new JsonArray([.. result]);
    }

    /// <summary>
    /// Whether a line the hub's change rewrites (adds, changes or removes, from <paramref name="before"/>
    /// to <paramref name="after"/>) was also changed in NetSuite: NetSuite's current line with that key
    /// differs from the hub's line before the change (line ids aside, which only NetSuite assigns).
    /// Such a line cannot be merged; the field is decided by the conflict policy.
    /// </summary>
    public static bool ChangedOnBothSides(JsonArray? before, JsonArray after, JsonArray current, string? keyField)
    {
        var beforeByKey = Index(before ?? [], keyField);
        var afterByKey = Index(after, keyField);
        var currentByKey = Index(current, keyField);
        foreach (var key in beforeByKey.Keys.Union(afterByKey.Keys))
        {
            var old = beforeByKey.GetValueOrDefault(key);
            var @new = afterByKey.GetValueOrDefault(key);
            if (SameLine(old, @new))
            {
                continue; // the hub does not rewrite this line
            }

            var theirs = currentByKey.GetValueOrDefault(key);
            if (!SameLine(theirs, old) && !SameLine(theirs, @new))
            {
                return true;
            }
        }

        return false;
    }

    private static bool SameLine(JsonNode? a, JsonNode? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        var x = a.DeepClone() as JsonObject;
        var y = b.DeepClone() as JsonObject;
        x?.Remove("id");
        y?.Remove("id");
        return JsonNode.DeepEquals(x ?? a, y ?? b);
    }

    private static Dictionary<string, JsonNode> Index(JsonArray lines, string? keyField)
    {
        var result = new Dictionary<string, JsonNode>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (line is not null && Key(line, keyField) is { } key)
            {
                result[key] = line;
            }
        }

        return result;
    }

    /// <summary>The configured line field, else the line's id, else its label, else the whole line.</summary>
    private static string? Key(JsonNode? line, string? keyField)
    {
        if (line is null)
        {
            return null;
        }

        var value = keyField is not null ? line[keyField] : line["label"] ?? line["id"];
        return value?.ToJsonString() ?? line.ToJsonString();
    }

    private static JsonNode? Strip(JsonNode? node)
    {
        if (node is JsonObject o)
        {
            o.Remove("links");
            foreach (var (_, child) in o.ToList())
            {
                Strip(child);
            }
        }
        else if (node is JsonArray a)
        {
            foreach (var child in a)
            {
                Strip(child);
            }
        }

        return node;
    }
}
