using Microsoft.Extensions.Options;

namespace CdcSync.Configuration;

// Microsoft.Extensions.Options' source generator writes these from the DataAnnotations of each
// options class and of what it holds ([ValidateObjectMembers], [ValidateEnumeratedItems]): the
// rules stay attributes on the options, nothing walks the classes by reflection at run time, and a
// nested options class left unmarked is a build warning (SYSLIB1212/1213; warnings are errors).
// One per config section that has rules; each connector type's validator lives next to its
// options (Connectors/<System>/). ConfigOptions runs each through ConfigKeyValidator so a failure
// names its config key. LoggingOptions has none: its only value, Format, is an enum, checked when
// it is bound.

/// <summary>Section Hub.</summary>
[OptionsValidator]
internal sealed partial class HubOptionsValidator : IValidateOptions<HubOptions>;

/// <summary>Section Console.</summary>
[OptionsValidator]
internal sealed partial class ConsoleOptionsValidator : IValidateOptions<ConsoleOptions>;
