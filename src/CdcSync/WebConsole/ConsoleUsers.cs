using System.Text.RegularExpressions;
using Dapper;
using Microsoft.AspNetCore.Identity;
using Npgsql;

namespace CdcSync.WebConsole;

/// <summary>
/// The console's users in the hub (<c>cdc.console_users</c>): added and managed with
/// `cdcsync console add-user|users|disable|reset-password`, checked at sign-in. Passwords are
/// hashed with ASP.NET Core Identity's <see cref="PasswordHasher{TUser}"/> (PBKDF2, salted) and
/// never leave this class.
/// </summary>
internal sealed partial class ConsoleUsers(NpgsqlDataSource hub)
{
    /// <summary>Shorter passwords are refused: the console may face a network.</summary>
    public const int MinimumPasswordLength = 12;

    private static readonly PasswordHasher<string> Hasher = new();

    [GeneratedRegex("^[A-Za-z0-9._@-]{1,64}$")]
    private static partial Regex ValidName();

    public static ConsoleRole ParseRole(string role) => role.ToLowerInvariant() switch
    {
        "viewer" => ConsoleRole.Viewer,
        "reviewer" => ConsoleRole.Reviewer,
        "operator" => ConsoleRole.Operator,
        _ => throw new OperatorException($"role '{role}' is not a console role; use viewer, reviewer or operator."),
    };

    public static string RoleName(ConsoleRole role) => role.ToString().ToLowerInvariant();

    public async Task AddAsync(string name, ConsoleRole role, string password, CancellationToken cancellationToken)
    {
        CheckName(name);
        CheckPassword(password);
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var added = await conn.ExecuteAsync(new CommandDefinition(
            "INSERT INTO cdc.console_users (name, role, password_hash) VALUES (@name, @role, @hash) ON CONFLICT (name) DO NOTHING",
            new { name, role = RoleName(role), hash = Hasher.HashPassword(name, password) }, cancellationToken: cancellationToken));
        if (added == 0)
        {
            throw new OperatorException($"console user '{name}' already exists; use 'cdcsync console reset-password {name}' or pick another name.");
        }
    }

    public async Task<IReadOnlyList<ConsoleUser>> ListAsync(CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var rows = await conn.QueryAsync<(string Name, string Role, bool Disabled, DateTime CreatedAt, DateTime? LastSignIn)>(new CommandDefinition(
            "SELECT name, role, disabled, created_at, last_sign_in FROM cdc.console_users ORDER BY name", cancellationToken: cancellationToken));
        return rows.Select(r => new ConsoleUser(r.Name, ParseRole(r.Role), r.Disabled, r.CreatedAt, r.LastSignIn)).ToList();
    }

    /// <summary>An enabled user by name, or null: what each signed-in request is checked against.</summary>
    public async Task<ConsoleUser?> FindEnabledAsync(string name, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var row = await conn.QuerySingleOrDefaultAsync<(string Name, string Role, bool Disabled, DateTime CreatedAt, DateTime? LastSignIn)?>(new CommandDefinition(
            "SELECT name, role, disabled, created_at, last_sign_in FROM cdc.console_users WHERE name = @name AND NOT disabled", new { name }, cancellationToken: cancellationToken));
        return row is { } r ? new ConsoleUser(r.Name, ParseRole(r.Role), r.Disabled, r.CreatedAt, r.LastSignIn) : null;
    }

    /// <summary>The user if the name and password match an enabled user; null otherwise (which one is wrong is not said).</summary>
    public async Task<ConsoleUser?> VerifyAsync(string name, string password, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var row = await conn.QuerySingleOrDefaultAsync<(string Name, string Role, string Hash, DateTime CreatedAt)?>(new CommandDefinition(
            "SELECT name, role, password_hash, created_at FROM cdc.console_users WHERE name = @name AND NOT disabled", new { name }, cancellationToken: cancellationToken));
        if (row is not { } user)
        {
            // Hash anyway, so a wrong name takes as long as a wrong password.
            Hasher.VerifyHashedPassword(name, Hasher.HashPassword(name, "not a user"), password);
            return null;
        }

        var result = Hasher.VerifyHashedPassword(user.Name, user.Hash, password);
        if (result == PasswordVerificationResult.Failed)
        {
            return null;
        }

        await conn.ExecuteAsync(new CommandDefinition(
            """
            UPDATE cdc.console_users SET last_sign_in = now(),
                   password_hash = CASE WHEN @rehash THEN @hash ELSE password_hash END
            WHERE name = @name
            """,
            new { name = user.Name, rehash = result == PasswordVerificationResult.SuccessRehashNeeded, hash = Hasher.HashPassword(user.Name, password) },
            cancellationToken: cancellationToken));
        return new ConsoleUser(user.Name, ParseRole(user.Role), false, user.CreatedAt, DateTime.UtcNow);
    }

    public async Task DisableAsync(string name, CancellationToken cancellationToken)
    {
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var changed = await conn.ExecuteAsync(new CommandDefinition(
            "UPDATE cdc.console_users SET disabled = true, updated_at = now() WHERE name = @name", new { name }, cancellationToken: cancellationToken));
        if (changed == 0)
        {
            throw NoSuchUser(name);
        }
    }

    /// <summary>Sets a new password and enables the user again.</summary>
    public async Task ResetPasswordAsync(string name, string password, CancellationToken cancellationToken)
    {
        CheckPassword(password);
        await using var conn = await hub.OpenConnectionAsync(cancellationToken);
        var changed = await conn.ExecuteAsync(new CommandDefinition(
            "UPDATE cdc.console_users SET password_hash = @hash, disabled = false, updated_at = now() WHERE name = @name",
            new { name, hash = Hasher.HashPassword(name, password) }, cancellationToken: cancellationToken));
        if (changed == 0)
        {
            throw NoSuchUser(name);
        }
    }

    private static void CheckName(string name)
    {
        if (!ValidName().IsMatch(name))
        {
            throw new OperatorException($"console user name '{name}' is not allowed; use 1-64 letters, digits, '.', '_', '@' or '-'.");
        }
    }

    private static void CheckPassword(string password)
    {
        if (password.Length < MinimumPasswordLength)
        {
            throw new OperatorException($"the password given on stdin has {password.Length} characters; use at least {MinimumPasswordLength}.");
        }
    }

    private static OperatorException NoSuchUser(string name) => new($"there is no console user '{name}' (see cdcsync console users).");
}
