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
}
