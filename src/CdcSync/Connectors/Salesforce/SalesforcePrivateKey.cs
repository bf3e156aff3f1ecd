using System.Security.Cryptography;

namespace CdcSync.Connectors.Salesforce;

/// <summary>
/// The RSA private key the JWT bearer flow signs with, read from <see cref="SalesforceOptions.PrivateKeyFile"/>
/// or <see cref="SalesforceOptions.PrivateKey"/> (PEM: PKCS#8 <c>PRIVATE KEY</c> as openssl writes it, or
/// PKCS#1 <c>RSA PRIVATE KEY</c>). Every problem is one sentence naming the key and the fix; none
/// repeats any of the key's text.
/// </summary>
internal static class SalesforcePrivateKey
{
    private const string Docs = "see docs/SALESFORCE_JWT.md";

    /// <summary>The key, or an <see cref="OperatorException"/> naming what is wrong.</summary>
    public static RSA Load(SalesforceOptions options, string path)
    {
        var (key, problem) = TryLoad(options);
        return key ?? throw new OperatorException($"Config key {path}:{problem!.Key}: {problem.Message}");
    }

    /// <summary>What is wrong with the configured private key, or null when it loads.</summary>
    public static KeyProblem? Problem(SalesforceOptions options)
    {
        var (key, problem) = TryLoad(options);
        key?.Dispose();
        return problem;
    }

    private static (RSA? Key, KeyProblem? Problem) TryLoad(SalesforceOptions options)
    {
        var hasFile = !string.IsNullOrWhiteSpace(options.PrivateKeyFile);
        var hasText = !string.IsNullOrWhiteSpace(options.PrivateKey);
        if (hasFile && hasText)
        {
            return (null, new(nameof(SalesforceOptions.PrivateKey), "Set PrivateKeyFile or PrivateKey, not both; remove one."));
        }

        if (!hasFile && !hasText)
        {
            return (null, new(nameof(SalesforceOptions.PrivateKeyFile), $"AuthFlow jwt signs its assertion with the private key of the connected app's certificate; set PrivateKeyFile to the PEM key file, or PrivateKey to the PEM text (e.g. \"${{SALESFORCE_PRIVATE_KEY}}\") ({Docs})."));
        }

        string text;
        string where;
        string member;
        if (hasFile)
        {
            member = nameof(SalesforceOptions.PrivateKeyFile);
            where = $"File {options.PrivateKeyFile}";
            try
            {
                text = File.ReadAllText(options.PrivateKeyFile!);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return (null, new(member, $"{where} does not exist; point PrivateKeyFile to the PEM private key made for the connected app's certificate ({Docs})."));
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                return (null, new(member, $"{where} cannot be read ({e.GetType().Name}); give the worker's user read access to it (chmod 600, owned by that user)."));
            }
        }
        else
        {
            member = nameof(SalesforceOptions.PrivateKey);
            where = "The PrivateKey value";
            // An environment variable often carries a PEM on one line with \n escapes.
            text = options.PrivateKey!.Replace("\\n", "\n", StringComparison.Ordinal);
        }

        return Parse(text, where, member);
    }

    private static (RSA? Key, KeyProblem? Problem) Parse(string text, string where, string member)
    {
        var labels = new List<string>();
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            labels.Add(label);
            if (label is "PRIVATE KEY" or "RSA PRIVATE KEY")
            {
                var der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
                var rsa = RSA.Create();
                try
                {
                    if (label == "RSA PRIVATE KEY")
                    {
                        rsa.ImportRSAPrivateKey(der, out _);
                    }
                    else
                    {
                        rsa.ImportPkcs8PrivateKey(der, out _);
                    }

                    return (rsa, null);
                }
                catch (CryptographicException)
                {
                    rsa.Dispose();
                    return (null, new(member, $"{where} is not an RSA private key (Salesforce's JWT bearer flow signs with RS256); make an RSA key: openssl req -x509 -newkey rsa:2048 -nodes ... ({Docs})."));
                }
            }

            rest = rest[fields.Location.End..];
        }

        var problem = labels switch
        {
            _ when labels.Contains("ENCRYPTED PRIVATE KEY") => $"{where} is encrypted with a passphrase; store it unencrypted (openssl pkey -in encrypted.key -out server.key) and protect the file instead.",
            _ when labels.Contains("EC PRIVATE KEY") => $"{where} is an EC key, not an RSA private key (Salesforce's JWT bearer flow signs with RS256); make an RSA key ({Docs}).",
            _ when labels.Contains("CERTIFICATE") => $"{where} holds a certificate, not its private key; the certificate goes to the connected app, {member} takes the private key openssl wrote with it.",
            _ when labels.Count > 0 => $"{where} holds no private key (found {string.Join(", ", labels)}); {member} takes the RSA private key of the connected app's certificate.",
            _ => $"{where} is not a PEM private key (no -----BEGIN PRIVATE KEY----- block); {member} takes the key file openssl wrote ({Docs}).",
        };
        return (null, new(member, problem));
    }

    /// <summary>A private key problem: the option it is about and the sentence saying what to do.</summary>
    internal sealed record KeyProblem(string Key, string Message);
}
