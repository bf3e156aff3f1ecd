namespace CdcSync.Sandboxes; internal static class Placeholder { }
