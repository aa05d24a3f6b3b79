using MambaSt.Batch.Storage.Local;

namespace MambaSt.Batch.Storage.Tests;

public sealed class LocalFolderStoreTests : BlobStoreContract, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"mambast-store-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    protected override async Task<IBlobStore> NewStoreAsync()
    {
        var store = new LocalFolderStore(_root);
        await store.CreateContainerIfMissingAsync(Ct);
        return store;
    }

    [Fact]
    public async Task A_symlink_that_leaves_the_root_is_refused()
    {
        var store = (LocalFolderStore)await NewStoreAsync();
        var outside = Path.Combine(Path.GetTempPath(), $"mambast-outside-{Guid.NewGuid():N}");
        Directory.CreateDirectory(outside);
        try
        {
            Directory.CreateSymbolicLink(Path.Combine(_root, "link"), outside);

            var e = await Should.ThrowAsync<StorageException>(() => store.PutAsync("link/x.jpg", new MemoryStream([1]), null, Ct));

            e.Kind.ShouldBe(StorageErrorKind.InvalidName);
            e.Message.ShouldContain("symbolic link");
            Directory.EnumerateFileSystemEntries(outside).ShouldBeEmpty();
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task A_link_whose_target_goes_up_through_another_link_is_refused()
    {
        // root/b -> outside/inner and root/a -> b/.. : read lexically, a is the root; the system resolves it to outside.
        var store = (LocalFolderStore)await NewStoreAsync();
        var outside = Path.Combine(Path.GetTempPath(), $"mambast-outside-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(outside, "inner"));
        File.WriteAllBytes(Path.Combine(outside, "secret.txt"), [42]);
        try
        {
            Directory.CreateSymbolicLink(Path.Combine(_root, "b"), Path.Combine(outside, "inner"));
            Directory.CreateSymbolicLink(Path.Combine(_root, "a"), "b/..");
            Directory.CreateSymbolicLink(Path.Combine(_root, "etc-link"), "/etc");
            Directory.CreateSymbolicLink(Path.Combine(_root, "up"), "etc-link/..");

            var read = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync("a/secret.txt", Ct));
            var write = await Should.ThrowAsync<StorageException>(() => store.PutAsync("a/new.jpg", new MemoryStream([1]), null, Ct));
            var exists = await Should.ThrowAsync<StorageException>(() => store.GetPropertiesAsync("a/secret.txt", Ct));
            var passwd = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync("up/etc/passwd", Ct));

            foreach (var e in new[] { read, write, exists, passwd })
            {
                e.Kind.ShouldBe(StorageErrorKind.InvalidName);
                e.Message.ShouldContain("symbolic link that leaves the root");
            }

            File.Exists(Path.Combine(outside, "new.jpg")).ShouldBeFalse();
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task A_loop_of_symlinks_is_refused_with_a_reason()
    {
        var store = (LocalFolderStore)await NewStoreAsync();
        File.CreateSymbolicLink(Path.Combine(_root, "x"), "y");
        File.CreateSymbolicLink(Path.Combine(_root, "y"), "x");

        var e = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync("x", Ct));

        e.Kind.ShouldBe(StorageErrorKind.InvalidName);
        e.Message.ShouldContain("loop of symbolic links");
    }

    [Fact]
    public async Task A_symlink_inside_the_root_is_allowed()
    {
        var store = (LocalFolderStore)await NewStoreAsync();
        Directory.CreateDirectory(Path.Combine(_root, "real"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "alias"), Path.Combine(_root, "real"));

        await store.PutAsync("alias/x.bin", new MemoryStream([5]), null, Ct);

        File.ReadAllBytes(Path.Combine(_root, "real", "x.bin")).ShouldBe(new byte[] { 5 });
    }

    [Fact]
    public async Task Sidecars_and_temp_files_stay_out_of_listings_and_dot_names_are_reserved()
    {
        var store = await NewStoreAsync();
        await store.PutAsync("a/b.jpg", new MemoryStream([1]), new BlobWriteOptions { ContentType = "image/jpeg" }, Ct);
        File.WriteAllBytes(Path.Combine(_root, "a", ".b.jpg.0123.tmp"), [1]);

        (await store.ListAsync(null, Ct).Select(i => i.Name).ToListAsync(Ct)).ShouldBe(["a/b.jpg"]);
        File.Exists(Path.Combine(_root, "a", ".b.jpg.meta.json")).ShouldBeTrue();
        var e = await Should.ThrowAsync<StorageException>(() => store.OpenReadAsync("a/.b.jpg.meta.json", Ct));
        e.Kind.ShouldBe(StorageErrorKind.InvalidName);
    }

    [Fact]
    public async Task Concurrent_create_if_absent_has_exactly_one_winner()
    {
        var store = await NewStoreAsync();
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            try
            {
                await store.PutAsync("race.bin", new MemoryStream(TestStores.Bytes(100_000, i)), new BlobWriteOptions { IfAbsent = true }, Ct);
                return i;
            }
            catch (StorageException e) when (e.Kind == StorageErrorKind.AlreadyExists)
            {
                return -1;
            }
        }));

        var winner = outcomes.Where(i => i >= 0).ShouldHaveSingleItem();
        (await TestStores.ReadAllAsync(store, "race.bin")).ShouldBe(TestStores.Bytes(100_000, winner));
        Directory.EnumerateFiles(_root, "*.tmp", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    private static BlobWriteOptions Job(int id) => new() { IfAbsent = true, ContentType = "image/jpeg", Metadata = new Dictionary<string, string> { ["mambast_job_id"] = $"job-{id}" } };

    [Fact]
    public async Task Concurrent_copies_of_a_job_never_see_data_without_its_metadata()
    {
        // Issue 21 finding 4: three copies of each of 300 jobs race to create-if-absent; whatever each copy gets
        // back (created or already there), the data it then sees carries the job's metadata.
        var store = await NewStoreAsync();
        var missing = 0;
        await Parallel.ForAsync(0, 300, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = Ct }, async (i, ct) =>
        {
            var name = $"race/{i}.jpg";
            async Task See()
            {
                try
                {
                    var seen = await store.GetPropertiesAsync(name, ct);
                    if (!seen.Metadata.TryGetValue("mambast_job_id", out var owner) || owner != $"job-{i}") Interlocked.Increment(ref missing);
                }
                catch (StorageException e) when (e.Kind == StorageErrorKind.NotFound)
                {
                }
            }

            var writers = Task.WhenAll(Enumerable.Range(0, 3).Select(copy => Task.Run(async () =>
            {
                try
                {
                    await store.PutAsync(name, new MemoryStream(TestStores.Bytes(20_000, copy)), Job(i), ct);
                }
                catch (StorageException e) when (e.Kind == StorageErrorKind.AlreadyExists)
                {
                }

                await See(); // what this copy then reports on
            }, ct)));
            while (!writers.IsCompleted) await See(); // what any reader sees meanwhile
            await writers;
        });

        missing.ShouldBe(0, "copies saw an output without its metadata");
        Directory.EnumerateFiles(_root, "*.tmp", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task Data_left_without_metadata_by_a_crash_is_absent_and_replaced_by_create_if_absent()
    {
        var store = await NewStoreAsync();
        Directory.CreateDirectory(Path.Combine(_root, "out"));
        File.WriteAllBytes(Path.Combine(_root, "out", "a.jpg"), [9, 9]); // renamed into place, then the crash: no sidecar

        await store.PutAsync("out/a.jpg", new MemoryStream([1, 2, 3]), Job(7), Ct);

        (await TestStores.ReadAllAsync(store, "out/a.jpg")).ShouldBe(new byte[] { 1, 2, 3 });
        (await store.GetPropertiesAsync("out/a.jpg", Ct)).Metadata["mambast_job_id"].ShouldBe("job-7");
        var again = await Should.ThrowAsync<StorageException>(() => store.PutAsync("out/a.jpg", new MemoryStream([4]), Job(7), Ct));
        again.Kind.ShouldBe(StorageErrorKind.AlreadyExists);
    }

    [Fact]
    public async Task A_claim_left_by_a_crash_is_taken_over_by_the_same_job_only()
    {
        // Metadata first: a crash after the sidecar and before the data leaves a claim and no data.
        var store = await NewStoreAsync();
        Directory.CreateDirectory(Path.Combine(_root, "out"));
        File.WriteAllText(Path.Combine(_root, "out", ".b.jpg.meta.json"), """{"ContentType":"image/jpeg","Metadata":{"mambast_job_id":"job-1"}}""");
        (await store.ExistsAsync("out/b.jpg", Ct)).ShouldBeFalse();

        var other = await Should.ThrowAsync<StorageException>(() => store.PutAsync("out/b.jpg", new MemoryStream([2]), Job(2), Ct));
        other.Kind.ShouldBe(StorageErrorKind.AlreadyExists);
        (await store.ExistsAsync("out/b.jpg", Ct)).ShouldBeFalse();

        await store.PutAsync("out/b.jpg", new MemoryStream([1]), Job(1), Ct);
        (await TestStores.ReadAllAsync(store, "out/b.jpg")).ShouldBe(new byte[] { 1 });
    }

    [Fact]
    public async Task A_full_disk_is_a_transient_unavailable_error_that_leaves_nothing_visible()
    {
        var mount = Path.Combine(Path.GetTempPath(), $"mambast-tmpfs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        if (!TryRun("mount", $"-t tmpfs -o size=256k tmpfs {mount}"))
        {
            Directory.Delete(mount);
            Assert.Skip("cannot mount a tmpfs here (needs root); the full-disk test runs where it can");
        }

        try
        {
            var store = new LocalFolderStore(mount);
            await store.PutAsync("small.jpg", new MemoryStream(new byte[1000]), Job(1), Ct);

            var e = await Should.ThrowAsync<StorageException>(() => store.PutAsync("big.jpg", new MemoryStream(new byte[1 << 20]), Job(2), Ct));

            e.Kind.ShouldBe(StorageErrorKind.Unavailable);
            e.IsTransient.ShouldBeTrue();
            e.Message.ShouldContain("disk is full");
            e.InnerException.ShouldBeOfType<IOException>();
            (await store.ExistsAsync("big.jpg", Ct)).ShouldBeFalse();
            (await store.ListAsync(null, Ct).Select(i => i.Name).ToListAsync(Ct)).ShouldBe(["small.jpg"]);
            Directory.EnumerateFiles(mount, "*.tmp", SearchOption.AllDirectories).ShouldBeEmpty();
        }
        finally
        {
            TryRun("umount", mount);
            Directory.Delete(mount, recursive: true);
        }
    }

    private static bool TryRun(string file, string arguments)
    {
        try
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
