#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cli/analyze/message.h"
#include "common/result.h"

// The commands that read a configuration (files, directories, or the running
// mesh's directory) without talking to any process: analyze, describe,
// explain and diff. They share one loading path: LocalWorkloads expanded as
// `sheave up` does, the registry built as sheave-control builds it.

namespace sheave::cli {

// istioctl's exit codes, so CI scripts written for it keep working.
inline constexpr int kExitAnalyzerFoundIssues = 79;
inline constexpr int kExitDataError = 65;

struct AnalyzeCommandOptions {
  // Files and directories of YAML. Empty: the running mesh's directory
  // (from `sheave up`'s status file in state_dir).
  std::vector<std::filesystem::path> paths;
  std::filesystem::path state_dir = "/run/sheave";
  // analyze: log | json | yaml; explain and diff: text | json | yaml.
  std::string output = "log";
  Level output_threshold = Level::kInfo;
  Level failure_threshold = Level::kError;
  std::string root_namespace = "istio-system";
  bool list_analyzers = false;
};

// Loads the paths (files or directories), expands LocalWorkloads into the
// WorkloadEntries `sheave up` would register, builds the registry and runs
// every check. Fails only when a path cannot be read.
Result<std::vector<AnalysisMessage>> analyzePaths(const std::vector<std::filesystem::path>& paths,
                                                  const std::string& root_namespace);

// `sheave describe pod|service NAME [PATHS]`: the configuration that applies
// to one workload or service (paths empty: the running mesh's directory).
int runDescribe(const std::string& kind, const std::string& name,
                const AnalyzeCommandOptions& options);

// `sheave explain --from WORKLOAD URL`: the request walked through the
// compiled configuration (see explain/explain.h); exit code 0 when it would
// reach the application, 1 when it would fail, 65 when nothing could be read.
int runExplain(const std::string& from, const std::string& url, const std::string& method,
               const std::vector<std::string>& headers, const AnalyzeCommandOptions& options);

// `sheave diff NEW [--base OLD] [--request "FROM METHOD URL [name=value]..."]`:
// which proxies' configuration the change alters, and which sample requests
// (given, plus a GET per upstream URL a LocalWorkload names) would be routed or
// authorized differently. `base` empty: the running mesh's directory.
int runDiff(const std::vector<std::filesystem::path>& base,
            const std::vector<std::filesystem::path>& changed,
            const std::vector<std::string>& requests, const AnalyzeCommandOptions& options);

// `sheave analyze`: prints the messages and returns 0, or 79 when one is at
// or above the failure threshold, 65 when a path cannot be read.
int runAnalyze(const AnalyzeCommandOptions& options);

}  // namespace sheave::cli
