// Most tests wait on a server, a sandbox or a worker process rather than compute: four classes at
// a time on a 2-core machine keep the suite's wall time down (xUnit's default is one per core).
[assembly: CollectionBehavior(MaxParallelThreads = 4)]
