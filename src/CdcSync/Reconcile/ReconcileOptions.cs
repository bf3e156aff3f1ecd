using System.ComponentModel.DataAnnotations;

namespace CdcSync.Reconcile;

/// <summary>Reconciliation in the worker. Section "Reconcile".</summary>
public sealed class ReconcileOptions : IValidatableObject
{
    /// <summary>When the worker (the lease holder) runs a reconcile, as a cron expression in UTC; empty turns it off. Default: <c>0 3 * * *</c> (daily at 03:00 UTC). Scheduled runs report; they do not repair.</summary>
    public string Schedule { get; set; } = "0 3 * * *";

    /// <summary>Most API calls a scheduled run makes (all systems together); past it the run stops and records status 'capped'. Default: none.</summary>
    [Range(1, long.MaxValue)]
    public long? MaxApiCalls { get; set; }

    /// <summary>
    /// What a repair does with a record its system removed without a trace (missing_in_system):
    /// false applies the delete the inbound path would have seen (the mapping's delete rule);
    /// true re-creates the record in its system from the hub's row. Default: false.
    /// </summary>
    public bool RecreateMissing { get; set; }

    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext validationContext)
    {
        string? problem = null;
        try
        {
            _ = string.IsNullOrWhiteSpace(Schedule) ? null : Scheduling.CronSchedule.Parse(Schedule, "Reconcile:Schedule");
        }
        catch (OperatorException e)
        {
            problem = e.Message;
        }

        if (problem is not null)
        {
            yield return new ValidationResult(problem, [nameof(Schedule)]);
        }
    }
}

/// <summary>Section Reconcile.</summary>
[Microsoft.Extensions.Options.OptionsValidator]
internal sealed partial class ReconcileOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<ReconcileOptions>;
