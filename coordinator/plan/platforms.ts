/**
 * What dockergate knows of each platform it writes profiles for: its native syscall table, the
 * seccomp architectures of a profile for it, and what Docker's default profile (moby/profiles
 * `seccomp/default.json`, copied to `data/`) allows there. The planner's fallbacks and the
 * policy writers (`output/policy.ts`) both read it.
 */
import type { Platform } from '../../extractor/types.js';
import { InvalidInputError, UnsupportedError } from '../../infra/errors.js';
import { formatPlatform } from '../../extractor/manifest.js';
import { type SyscallArch, syscallTable } from '../../worker/syscalls/index.js';
import dockerDefault from './data/docker-default-seccomp.json' with { type: 'json' };

/** The `Arch` enum of the security-profiles-operator CRD (v1beta1), in its order. */
export const SECCOMP_ARCHES = [
  'SCMP_ARCH_NATIVE',
  'SCMP_ARCH_X86',
  'SCMP_ARCH_X86_64',
  'SCMP_ARCH_X32',
  'SCMP_ARCH_ARM',
  'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64',
  'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL',
  'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC',
  'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE',
  'SCMP_ARCH_S390',
  'SCMP_ARCH_S390X',
  'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64',
] as const;
export type SeccompArch = (typeof SECCOMP_ARCHES)[number];

export interface PlatformSpec {
  /** Syscall table of the platform's native ABI (`worker/syscalls`). */
  readonly table: SyscallArch;
  /**
   * Architectures as moby's default profile `archMap` lists them for this native arch (the native
   * one first, then its compat sub-architectures); moby has no entry for 32-bit arm or 386, which
   * then get only their native arch.
   */
  readonly architectures: readonly SeccompArch[];
  /** Names moby's `includes.arches` uses for this platform. */
  readonly dockerArches: readonly string[];
}

/**
 * OCI `architecture` values (Go's GOARCH) we can write profiles for: those with a syscall table.
 * ppc64le, s390x, mips64*, loong64 have none in `worker/syscalls`, so their names cannot be checked.
 */
export const PLATFORMS: Readonly<Record<string, PlatformSpec>> = {
  amd64: { table: 'x86_64', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], dockerArches: ['amd64'] },
  arm64: { table: 'aarch64', architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'], dockerArches: ['arm64'] },
  arm: { table: 'arm', architectures: ['SCMP_ARCH_ARM'], dockerArches: ['arm'] },
  '386': { table: 'i386', architectures: ['SCMP_ARCH_X86'], dockerArches: ['386', 'x86'] },
  riscv64: { table: 'riscv64', architectures: ['SCMP_ARCH_RISCV64'], dockerArches: ['riscv64'] },
};

export function platformSpec(platform: Platform): PlatformSpec {
  const spec = platform.os === 'linux' ? PLATFORMS[platform.architecture] : undefined;
  if (!spec) {
    const name = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
    throw new UnsupportedError(`no seccomp profile for platform ${name} (supported: linux/${Object.keys(PLATFORMS).join(', linux/')})`);
  }
  return spec;
}

/** The syscall table used to check names for `platform` (`x86_64` for linux/amd64, ...). */
export function platformSyscallArch(platform: Platform): SyscallArch {
  return platformSpec(platform).table;
}

const knownNames = new Map<SyscallArch, ReadonlySet<string>>();
export function namesOf(arch: SyscallArch): ReadonlySet<string> {
  let names = knownNames.get(arch);
  if (!names) {
    names = new Set(syscallTable(arch).values());
    knownNames.set(arch, names);
  }
  return names;
}

/**
 * A syscall name of `platform`'s table, or of any supported platform's when none is given: a typo
 * is an error, not an empty answer (`explain`, `kb syscall`, the knowledge-base API).
 */
export function checkSyscallName(name: string, platform?: Platform): void {
  const specs = platform ? [platformSpec(platform)] : Object.values(PLATFORMS);
  if (specs.some((spec) => namesOf(spec.table).has(name))) return;
  const where = platform ? formatPlatform(platform) : 'any supported platform';
  throw new InvalidInputError(`${JSON.stringify(name)} is not a syscall of ${where}`);
}

/** Code-unit order: stable across locales and Node versions. */
export function sortedUnique(names: Iterable<string>): string[] {
  return [...new Set(names)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

interface DefaultProfileRule {
  readonly names: readonly string[];
  readonly action: string;
  readonly args?: readonly unknown[] | null;
  readonly includes?: { readonly arches?: readonly string[]; readonly caps?: readonly string[]; readonly minKernel?: string };
  readonly excludes?: { readonly arches?: readonly string[]; readonly caps?: readonly string[] };
}

/**
 * What Docker's default profile (moby/profiles `seccomp/default.json`, copied to
 * `coordinator/data/`) allows on `platform` with no condition: ALLOW rules without argument filters,
 * without capability conditions, without a minimum kernel, and whose arch condition (if any) names
 * this platform; restricted to the platform's syscall table. linux/amd64 gives 302 names: the 300 of
 * the unconditional rule plus `arch_prctl` and `modify_ldt` (arch-conditional, unconditional here).
 * `ptrace`, `process_vm_readv`/`writev` (minKernel 4.8), `socket` and `personality` (argument
 * filters) and the capability-gated calls are not counted.
 */
export function DEFAULT_PROFILE_SYSCALLS(platform: Platform): string[] {
  return defaultProfileNames(platform, false);
}

/**
 * What the scan allows when code it cannot follow may run ("fall back to Docker's default"): every
 * name Docker's default allows a container without added capabilities on a current kernel, that
 * is `DEFAULT_PROFILE_SYSCALLS` plus the names allowed only for some arguments (`socket`,
 * `personality`, `clone` without namespace flags: allowed whole, that code may pass any of those
 * arguments), only from kernel 4.8 (`ptrace`, `process_vm_readv`/`writev`), or unless a capability
 * is held (`clone`).
 */
export function DOCKER_DEFAULT_FALLBACK_SYSCALLS(platform: Platform): string[] {
  return defaultProfileNames(platform, true);
}

function defaultProfileNames(platform: Platform, asFallback: boolean): string[] {
  const spec = platformSpec(platform);
  const known = namesOf(spec.table);
  const rules = dockerDefault.syscalls as readonly DefaultProfileRule[];
  const names = rules
    .filter((rule) => {
      if (rule.action !== 'SCMP_ACT_ALLOW' || (!asFallback && rule.args && rule.args.length > 0)) return false;
      const inc = rule.includes ?? {};
      const exc = rule.excludes ?? {};
      if (inc.caps?.length || (!asFallback && (inc.minKernel || exc.caps?.length))) return false;
      if (inc.arches?.length && !inc.arches.some((arch) => spec.dockerArches.includes(arch))) return false;
      if (exc.arches?.some((arch) => spec.dockerArches.includes(arch))) return false;
      return true;
    })
    .flatMap((rule) => rule.names);
  return sortedUnique(names.filter((name) => known.has(name)));
}
