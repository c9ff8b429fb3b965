#!/usr/bin/env bash
# Builds the fault harness's Java producer (FaultsProducer.java next to this script) against the Apache
# kafka-clients of the Java client suite (broker/tests/clients/java/pom.xml: same version, same ~/.m2 cache
# hack/prereqs.sh fills) and prints the classpath to run it with on stdout.
# The build lands in ${TRIBUTARY_CACHE:-~/.cache/tributary}/faults-java/, keyed by the source, the suite's
# pom and the JDK, so a warm machine only hashes three inputs; a fresh one runs Maven once to resolve the
# dependency classpath (Maven Central) and javac once.
# Usage: hack/faults/java/build.sh        (hack/cluster.sh and hack/prereqs.sh call it)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}/faults-java"
src="$here/FaultsProducer.java"
pom="$repo/broker/tests/clients/java/pom.xml"

command -v javac >/dev/null || { echo "faults/java/build.sh: no javac (a JDK 17+ is needed)" >&2; exit 2; }
# The JDK by its resolved path, not `javac -version`: that starts a JVM on every (warm) call.
key="$( { sha256sum "$src" "$pom" | cut -d' ' -f1; readlink -f "$(command -v javac)"; } | sha256sum | cut -c1-16)"
dir="$cache/$key"
if [[ ! -f "$dir/classpath" ]]; then
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  log="$tmp/build.log"
  # The suite's test scope holds kafka-clients and its runtime dependencies (compression codecs, slf4j-api)
  # plus slf4j-simple for the client's log; JUnit is left out.
  if ! mvn -q -B -Dstyle.color=never -f "$pom" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath \
      -Dmdep.includeScope=test -Dmdep.outputFile="$tmp/deps" \
      -DexcludeGroupIds=org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    exit 1
  fi
  grep -q 'kafka-clients-[^/]*\.jar' "$tmp/deps" || { echo "faults/java/build.sh: no kafka-clients in $(cat "$tmp/deps")" >&2; exit 1; }
  javac --release 17 -Xlint:all -Werror -cp "$(cat "$tmp/deps")" -d "$tmp/classes" "$src" >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
  printf '%s:%s\n' "$dir/classes" "$(cat "$tmp/deps")" >"$tmp/classpath.tmp"
  # The classpath names $dir/classes: move the classes there before the file that marks the build done.
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$tmp/classes" "$dir/classes"
  mv "$tmp/classpath.tmp" "$dir/classpath"
  # Builds of other sources, unused for a day (another checkout may still run its own).
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +1 -exec rm -rf {} +
fi
cat "$dir/classpath"
