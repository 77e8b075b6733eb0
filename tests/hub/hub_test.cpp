// The hub layer without a network: name parsing and the catalog, quant matching,
// the digests, the Hugging Face cache layout, Ollama manifests, the environment.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hub/config.h"
#include "hub/digest.h"
#include "hub/hf_cache.h"
#include "hub/names.h"
#include "hub/ollama.h"

namespace dhi::hub {
namespace {
namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/dhi_hub_" + std::to_string(getpid()) + "_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Names, CatalogNamesMapToRepositoryFiles) {
  auto r = parse_model_name("deepseek-r1:1.5b");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->hf);
  EXPECT_EQ(r->hf->repo, "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF");
  EXPECT_EQ(r->hf->file, "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf");
  EXPECT_EQ(r->hf->revision, "main");
  EXPECT_EQ(r->catalog_name, "deepseek-r1:1.5b-q4_k_m");
  EXPECT_EQ(r->ollama, "deepseek-r1:1.5b");

  r = parse_model_name("DeepSeek-R1:7B-Q8_0");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hf->file, "DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf");
  r = parse_model_name("deepseek-r1:8b");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hf->repo, "unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF");
  r = parse_model_name("deepseek-r1-qwen3:8b-q6_k");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hf->file, "DeepSeek-R1-0528-Qwen3-8B-Q6_K.gguf");
  // Bare family names take Ollama's "latest" sizes.
  r = parse_model_name("deepseek-r1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hf->file, "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf");
  EXPECT_EQ(r->ollama, "deepseek-r1:latest");
  // Every catalog file maps back to its name.
  for (const CatalogModel& m : catalog()) {
    for (std::string_view q : catalog_quants()) {
      const std::string name = std::string(m.family) + ":" + std::string(m.size) + "-" + std::string(q);
      auto ref = parse_model_name(name);
      ASSERT_TRUE(ref.ok() && ref->hf) << name;
      const std::string back = catalog_name_of(ref->hf->repo, ref->hf->file);
      EXPECT_EQ(back, q == catalog_quants()[0] ? std::string(m.family) + ":" + std::string(m.size) : name);
    }
  }
  EXPECT_EQ(catalog_name_of("someone/else", "x.gguf"), "");
}

TEST(Names, HfUrlsRepoQuantAndOllamaNames) {
  auto r = parse_model_name("hf://owner/repo/sub/dir/model-Q4_K_M.gguf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->hf->repo, "owner/repo");
  EXPECT_EQ(r->hf->file, "sub/dir/model-Q4_K_M.gguf");
  EXPECT_FALSE(r->ollama);
  r = parse_model_name("hf://owner/repo@v1.0/m.gguf");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hf->revision, "v1.0");

  r = parse_model_name("bartowski/Some-Model-GGUF:Q5_K_M");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hf->repo, "bartowski/Some-Model-GGUF");
  EXPECT_EQ(r->hf->quant, "Q5_K_M");
  EXPECT_TRUE(r->hf->file.empty());
  EXPECT_EQ(r->ollama, "bartowski/Some-Model-GGUF:Q5_K_M");  // also a namespaced Ollama name

  r = parse_model_name("llama3.2:1b");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->hf);
  EXPECT_EQ(r->ollama, "llama3.2:1b");
  r = parse_model_name("qwen");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ollama, "qwen:latest");

  for (const char* bad : {"", "hf://owner/repo", "hf://owner/repo/../x.gguf", "hf://owner/repo//x.gguf",
                          "hf://../repo/x.gguf", "hf://o/r@bad rev/x.gguf", "a/b/c/d:e", "bad name!", "x:",
                          "-flag:1", "a/../b:q4"}) {
    EXPECT_FALSE(parse_model_name(bad).ok()) << bad;
  }
}

TEST(Names, QuantMatchingNeedsWholeTags) {
  EXPECT_TRUE(file_has_quant("Model-Q4_K_M.gguf", "q4_k_m"));
  EXPECT_FALSE(file_has_quant("Model-Q4_K_M.gguf", "Q4_K"));
  EXPECT_TRUE(file_has_quant("model.q8_0.gguf", "Q8_0"));
  EXPECT_FALSE(file_has_quant("Q8_0/model.gguf", "Q8_0"));  // the file name carries it, not a folder
  EXPECT_FALSE(file_has_quant("Model-IQ4_XS.gguf", "Q4_XS"));

  const std::vector<std::string> files = {"README.md", "M-Q4_K_M.gguf", "M-Q4_K_S.gguf", "M-Q8_0.gguf",
                                          "a/M-Q6_K.gguf", "b/M-Q6_K.gguf", "M-Q2_K-00001-of-00002.gguf"};
  auto f = pick_quant_file(files, "o/r", "q4_k_m");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, "M-Q4_K_M.gguf");
  f = pick_quant_file(files, "o/r", "Q5_K_M");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("M-Q8_0.gguf"), std::string::npos) << f.error().message;
  f = pick_quant_file(files, "o/r", "Q6_K");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("several"), std::string::npos);
  f = pick_quant_file(files, "o/r", "Q2_K");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("split"), std::string::npos);
}

TEST(Digest, KnownValues) {
  Digest sha(DigestKind::Sha256, 3);
  sha.update("ab", 2);
  sha.update("c", 1);
  EXPECT_EQ(sha.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // `git hash-object` of "hello\n".
  Digest git(DigestKind::GitBlobSha1, 6);
  git.update("hello\n", 6);
  EXPECT_EQ(git.hex(), "ce013625030ba8dba906f756967f9e9ca394464a");

  EXPECT_EQ(*digest_kind_of(std::string(64, 'a')), DigestKind::Sha256);
  EXPECT_EQ(*digest_kind_of(std::string(40, '0')), DigestKind::GitBlobSha1);
  EXPECT_FALSE(digest_kind_of("abc").ok());
  EXPECT_FALSE(digest_kind_of(std::string(64, 'A')).ok());
  EXPECT_FALSE(digest_kind_of(std::string(63, 'a') + "g").ok());
}

TEST(HfCache, SnapshotLinksRefsAndRemoval) {
  const std::string root = temp_dir("cache");
  const HfCache cache(root);
  const std::string repo = "owner/repo";
  const std::string c1(40, '1'), c2(40, '2');
  const std::string e1(64, 'a'), e2(64, 'b');
  EXPECT_EQ(cache.repo_dir(repo), root + "/models--owner--repo");
  write(cache.blob_path(repo, e1), "GGUF one");
  write(cache.blob_path(repo, e2), "GGUF two");
  ASSERT_TRUE(cache.link(repo, c1, "m.gguf", e1).ok());
  ASSERT_TRUE(cache.link(repo, c1, "sub/dir/n.gguf", e2).ok());
  ASSERT_TRUE(cache.link(repo, c2, "m.gguf", e1).ok());
  EXPECT_EQ(fs::read_symlink(cache.snapshot_path(repo, c1, "sub/dir/n.gguf")).string(),
            "../../../../blobs/" + e2);

  EXPECT_FALSE(cache.find(repo, "main", "m.gguf"));  // no ref yet
  ASSERT_TRUE(cache.write_ref(repo, "main", c1).ok());
  ASSERT_TRUE(cache.write_ref(repo, c2, c2).ok());  // a commit needs no ref file
  EXPECT_FALSE(fs::exists(cache.repo_dir(repo) + "/refs/" + c2));
  EXPECT_EQ(cache.find(repo, "main", "m.gguf"), cache.snapshot_path(repo, c1, "m.gguf"));
  EXPECT_EQ(cache.find(repo, c2, "m.gguf"), cache.snapshot_path(repo, c2, "m.gguf"));
  EXPECT_EQ(cache.snapshot_files(repo, "main"), (std::vector<std::string>{"m.gguf", "sub/dir/n.gguf"}));
  EXPECT_EQ(cache.list_gguf().size(), 3u);

  // n.gguf goes with its blob and its emptied folders; m.gguf leaves both
  // snapshots, then its blob and the repository folder go.
  auto removed = cache.remove(repo, "sub/dir/n.gguf");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(fs::exists(cache.blob_path(repo, e2)));
  EXPECT_FALSE(fs::exists(cache.repo_dir(repo) + "/snapshots/" + c1 + "/sub"));
  EXPECT_TRUE(fs::exists(cache.blob_path(repo, e1)));
  removed = cache.remove(repo, "m.gguf");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2);
  EXPECT_FALSE(fs::exists(cache.repo_dir(repo)));
  EXPECT_EQ(*cache.remove(repo, "m.gguf"), 0);
}

TEST(HfCache, SharedBlobStaysWhileLinked) {
  const std::string root = temp_dir("shared");
  const HfCache cache(root);
  const std::string repo = "o/r", c1(40, '1'), e(64, 'c');
  write(cache.blob_path(repo, e), "GGUF");
  ASSERT_TRUE(cache.link(repo, c1, "a.gguf", e).ok());
  ASSERT_TRUE(cache.link(repo, c1, "b.gguf", e).ok());
  ASSERT_EQ(*cache.remove(repo, "a.gguf"), 1);
  EXPECT_TRUE(fs::exists(cache.blob_path(repo, e)));
  ASSERT_TRUE(cache.write_ref(repo, "main", c1).ok());
  EXPECT_TRUE(cache.find(repo, "main", "b.gguf"));
  // A dangling link (blob deleted by hand) is not a cache hit.
  fs::remove(cache.blob_path(repo, e));
  EXPECT_FALSE(cache.find(repo, "main", "b.gguf"));
}

TEST(Ollama, ManifestsAreCheckedAndNamesMapToPaths) {
  const std::string root = temp_dir("ollama");
  const std::string digest(64, 'd');
  write(root + "/blobs/sha256-" + digest, "GGUF and more");
  write(root + "/blobs/sha256-" + std::string(64, 'e'), "not gguf");
  auto manifest = [](const std::string& d) {
    return "{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.template\","
           "\"digest\":\"sha256:" + std::string(64, '0') + "\",\"size\":1},{\"mediaType\":"
           "\"application/vnd.ollama.image.model\",\"digest\":\"sha256:" + d + "\",\"size\":13}]}";
  };
  write(root + "/manifests/registry.ollama.ai/library/good/1b", manifest(digest));
  write(root + "/manifests/registry.ollama.ai/someone/theirs/latest", manifest(digest));
  write(root + "/manifests/example.com/ns/other/v1", manifest(digest));
  write(root + "/manifests/registry.ollama.ai/library/notgguf/latest", manifest(std::string(64, 'e')));
  write(root + "/manifests/registry.ollama.ai/library/noblob/latest", manifest(std::string(64, 'f')));
  write(root + "/manifests/registry.ollama.ai/library/baddigest/latest", manifest("xyz"));
  write(root + "/manifests/registry.ollama.ai/library/nolayers/latest", "{\"layers\":{}}");

  auto list = list_ollama_models(root);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].name, "example.com/ns/other:v1");
  EXPECT_EQ(list[1].name, "good:1b");
  EXPECT_EQ(list[2].name, "someone/theirs:latest");
  EXPECT_EQ(list[1].blob, root + "/blobs/sha256-" + digest);
  EXPECT_EQ(list[1].size, 13u);

  auto found = find_ollama_model(root, "good:1b");
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ((*found)->blob, root + "/blobs/sha256-" + digest);
  found = find_ollama_model(root, "someone/theirs");
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ((*found)->name, "someone/theirs:latest");
  found = find_ollama_model(root, "absent:1b");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(*found);
  for (const char* bad : {"notgguf", "noblob", "baddigest", "nolayers"}) {
    auto r = find_ollama_model(root, bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_NE(find_ollama_model(root, "notgguf").error().message.find("not a GGUF file"), std::string::npos);
  EXPECT_TRUE(list_ollama_models(root + "/nowhere").empty());
}

// Restores an environment variable at scope exit.
struct EnvVar {
  std::string name;
  std::optional<std::string> old;
  EnvVar(const char* n, const char* value) : name(n) {
    if (const char* v = std::getenv(n)) old = v;
    if (value) setenv(n, value, 1);
    else unsetenv(n);
  }
  ~EnvVar() {
    if (old) setenv(name.c_str(), old->c_str(), 1);
    else unsetenv(name.c_str());
  }
};

TEST(HubConfig, ReadsTheHuggingFaceAndOllamaVariables) {
  const std::string home = temp_dir("env");
  write(home + "/hf/token", "hf_file_token\n");
  EnvVar a("HF_HOME", (home + "/hf").c_str()), b("HF_HUB_CACHE", nullptr), c("HF_TOKEN", nullptr),
      d("HF_ENDPOINT", "http://mirror.example//"), e("HF_HUB_OFFLINE", "1"), f("OLLAMA_MODELS", nullptr),
      g("HOME", home.c_str());
  HubConfig cfg = HubConfig::from_env();
  EXPECT_EQ(cfg.cache_dir, home + "/hf/hub");
  EXPECT_EQ(cfg.token, "hf_file_token");
  EXPECT_EQ(cfg.endpoint, "http://mirror.example");
  EXPECT_TRUE(cfg.offline);
  EXPECT_EQ(cfg.ollama_dir, home + "/.ollama/models");

  EnvVar h("HF_HUB_CACHE", "/elsewhere"), i("HF_TOKEN", "hf_env"), j("HF_ENDPOINT", nullptr),
      k("HF_HUB_OFFLINE", "0"), l("OLLAMA_MODELS", "/models");
  cfg = HubConfig::from_env();
  EXPECT_EQ(cfg.cache_dir, "/elsewhere");
  EXPECT_EQ(cfg.token, "hf_env");
  EXPECT_EQ(cfg.endpoint, "https://huggingface.co");
  EXPECT_FALSE(cfg.offline);
  EXPECT_EQ(cfg.ollama_dir, "/models");

  EnvVar m("HF_HOME", nullptr), n("XDG_CACHE_HOME", nullptr), o("HF_HUB_CACHE", nullptr);
  EXPECT_EQ(HubConfig::from_env().cache_dir, home + "/.cache/huggingface/hub");
}

}  // namespace
}  // namespace dhi::hub
