/**
 * Policy writers: a set of syscall names → Docker/OCI seccomp JSON (moby's profile format, the one
 * `docker run --security-opt seccomp=<file>` reads) and → a Kubernetes `SeccompProfile` of the
 * security-profiles-operator. Pure functions: no I/O, output sorted and stable (golden-file safe).
 *
 * The caller decides what goes into the allowed set; in particular the container runtime's own
 * needs (`coordinator/plan/runtime-syscalls.ts`) are not added here.
 */
import { createRequire } from 'node:module';
import type { Platform } from '../../extractor/types.js';
import { UnsupportedError } from '../../infra/errors.js';
import { namesOf, PLATFORMS, platformSpec, SECCOMP_ARCHES, type SeccompArch, sortedUnique } from '../plan/platforms.js';

/** yaml, loaded when a Kubernetes profile is first written (most commands write none). */
let yaml: typeof import('yaml') | undefined;
const yamlText = (doc: unknown): string => (yaml ??= createRequire(import.meta.url)('yaml') as typeof import('yaml')).stringify(doc, { lineWidth: 0 });

/** Actions of libseccomp as the OCI runtime spec and moby spell them. */
export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
] as const;
export type SeccompAction = (typeof SECCOMP_ACTIONS)[number];

/** One rule of a profile (moby `types.Syscall`, without the `includes`/`excludes` we never write). */
export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
}

/** A Docker/OCI seccomp profile as written by `dockerProfile` (a JSON document). */
export interface DockerSeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  architectures: SeccompArch[];
  syscalls: SeccompRule[];
}

/** asm-generic errno values; the same on every architecture of `PLATFORMS` (MIPS would differ). */
export const EPERM = 1;
export const ENOSYS = 38;

/**
 * Syscalls that C libraries and common programs call *to find out whether the kernel has them*, and
 * that they replace by an older call only when the answer is ENOSYS. Denying one of them with EPERM
 * turns "old kernel, use the fallback" into a hard failure; denying it with ENOSYS keeps the program
 * working on its fallback path. Only names missing from the allowed set get this rule.
 *
 * - `clone3`: glibc ≥ 2.34 `pthread_create`/`posix_spawn` try clone3 and fall back to clone only on
 *   ENOSYS; with EPERM no thread can be started (moby#42680, fixed by moby#42681's ENOSYS rule in
 *   Docker's default profile; containerd#5982).
 * - `faccessat2`: glibc ≥ 2.33 `faccessat` and musl's (with flags) fall back to faccessat/fstatat
 *   only on ENOSYS (the breakage that opened runc#2151).
 * - `close_range`: glibc ≥ 2.34 `closefrom` and posix_spawn's closefrom action, CPython, OpenSSH and
 *   systemd walk /proc/self/fd instead when it is ENOSYS.
 * - `openat2`: no glibc wrapper; systemd, runc (filepath-securejoin) and others probe it and use
 *   openat on ENOSYS.
 * - `statx`: glibc's `statx()` falls back to fstatat on ENOSYS, and on 32-bit ABIs glibc ≥ 2.33 /
 *   musl ≥ 1.2 implement `stat` itself as statx first, fstatat64 on ENOSYS.
 * - `fchmodat2`: glibc ≥ 2.39 `fchmodat(AT_SYMLINK_NOFOLLOW)` tries it, O_PATH emulation on ENOSYS.
 * - `getrandom`: glibc ≥ 2.36 `arc4random`, OpenSSL and Go read /dev/urandom instead on ENOSYS.
 * - `*_time64` (32-bit ABIs only): glibc ≥ 2.34 and musl ≥ 1.2 call the 64-bit-time syscall first
 *   and the old one only on ENOSYS.
 *
 * Deliberately not here: `rseq` and `set_robust_list` (glibc ignores any error of them), and calls
 * whose callers treat every error alike (io_uring_setup in libuv, landlock_* probes).
 */
const PROBED_SYSCALLS: readonly string[] = ['clone3', 'close_range', 'faccessat2', 'fchmodat2', 'getrandom', 'openat2', 'statx'];
/** The 64-bit-time syscalls of 32-bit ABIs whose names do not end in `_time64`. */
const TIME64_SYSCALLS: readonly string[] = [
  'clock_adjtime64',
  'clock_gettime64',
  'clock_settime64',
  'timer_gettime64',
  'timer_settime64',
  'timerfd_gettime64',
  'timerfd_settime64',
];
const isProbed = (name: string) => PROBED_SYSCALLS.includes(name) || TIME64_SYSCALLS.includes(name) || name.endsWith('_time64');

export interface DockerProfileOptions {
  /**
   * errno of denied syscalls. Default `EPERM`, with an extra ENOSYS rule for the probed syscalls
   * (see `PROBED_SYSCALLS`): most programs report EPERM on a denied call as what it is ("operation
   * not permitted") and fail clearly or carry on, whereas ENOSYS everywhere sends some of them down
   * paths meant for ancient kernels; Docker's own default is EPERM too. The probed syscalls are the
   * exception, where only ENOSYS gives the fallback (moby#42680).
   *
   * `ENOSYS` denies everything with ENOSYS. `defaultErrnoRet: 38` alone is not enough: Docker 20.10
   * drops `defaultErrnoRet` when it converts the profile for runc (measured on 20.10.24: the OCI
   * config.json has no such field and denied calls return EPERM), and the Kubernetes CRD has no such
   * field. So every table name that is not allowed is also listed in an explicit ENOSYS rule.
   */
  errno?: 'EPERM' | 'ENOSYS';
}

export interface GeneratedDockerProfile {
  profile: DockerSeccompProfile;
  /** Input names that are not syscalls of the platform's table, sorted; they are not in the profile. */
  dropped: string[];
  /** Names that get the ENOSYS rule (probed and not allowed; with `errno: 'ENOSYS'` all not allowed), sorted. */
  enosys: string[];
}

/**
 * The profile and what was dropped to make it. Names are checked against the platform's native
 * syscall table; the compat architectures that Docker also lists (X86 and X32 on amd64, ARM on arm64)
 * get the same names, as in Docker's profile, so names that exist only in a compat ABI
 * (`clock_gettime64` on amd64) are dropped rather than allowed blindly.
 *
 * runc (≥ 1.0) also returns ENOSYS, whatever the default errno, for every syscall numbered above the
 * highest number the profile names (measured with runc 1.1.5: a profile naming nothing above 439
 * gets ENOSYS for 450, one naming 452 gets EPERM for 450). Every probed name is either allowed or in
 * the ENOSYS rule, so that boundary always sits at the newest probed syscall (fchmodat2, 452 on
 * x86_64): the older syscalls a profile leaves out get EPERM, newer ones ENOSYS.
 */
export function buildDockerProfile(
  syscalls: Iterable<string>,
  platform: Platform,
  options: DockerProfileOptions = {},
): GeneratedDockerProfile {
  const spec = platformSpec(platform);
  const known = namesOf(spec.table);
  const allowed: string[] = [];
  const dropped: string[] = [];
  for (const name of sortedUnique(syscalls)) (known.has(name) ? allowed : dropped).push(name);

  const errno = options.errno ?? 'EPERM';
  const allowedSet = new Set(allowed);
  const enosys = sortedUnique([...known].filter((name) => !allowedSet.has(name) && (errno === 'ENOSYS' || isProbed(name))));

  const rules: SeccompRule[] = [];
  if (allowed.length > 0) rules.push({ names: allowed, action: 'SCMP_ACT_ALLOW' });
  if (enosys.length > 0) rules.push({ names: enosys, action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  return {
    profile: {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: errno === 'EPERM' ? EPERM : ENOSYS,
      architectures: [...spec.architectures],
      syscalls: rules,
    },
    dropped,
    enosys,
  };
}

/** Docker/OCI seccomp JSON allowing exactly the known names of `syscalls`; see `buildDockerProfile`. */
export function dockerProfile(syscalls: Iterable<string>, platform: Platform, options?: DockerProfileOptions): DockerSeccompProfile {
  return buildDockerProfile(syscalls, platform, options).profile;
}

/** The names a profile allows unconditionally (rules with action ALLOW and no argument filter). */
export function allowedSyscalls(profile: DockerSeccompProfile): string[] {
  return sortedUnique(profile.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW').flatMap((rule) => rule.names));
}

// ---------------------------------------------------------------- Kubernetes

/**
 * The SeccompProfile API of security-profiles-operator: still `v1beta1` (its CRD in
 * deploy/operator.yaml serves that version; namespaced), checked on 2026-12-02.
 */
export const SPO_API_VERSION = 'security-profiles-operator.x-k8s.io/v1beta1';

/** A Kubernetes object name (RFC 1123 subdomain) for an image reference: `registry-repo-tag`. */
export function kubernetesName(reference: string): string {
  const name = reference.replace(/^[a-z-]+:(\/\/)?/, '').toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  return name.slice(0, 253).replace(/[-.]+$/, '') || 'dockergate';
}

/**
 * YAML of a security-profiles-operator `SeccompProfile` carrying `profile`. The CRD has no
 * `defaultErrnoRet` (the API server would prune it), so the runtime's default, EPERM, applies to
 * names no rule lists; a profile with another default errno is accepted only when its rules name every
 * syscall of the native table, as `dockerProfile(..., { errno: 'ENOSYS' })` writes them. `errnoRet` is
 * written as an integer, as the current CRD declares it (`ErrnoRet uint`); SPO releases before that
 * had a string there.
 */
export function kubernetesProfile(profile: DockerSeccompProfile, name: string, namespace?: string): string {
  if (profile.defaultErrnoRet !== EPERM && !defaultCarriedByRules(profile)) {
    throw new UnsupportedError(
      `the SeccompProfile CRD has no defaultErrnoRet; a profile denying with errno ${profile.defaultErrnoRet} needs explicit rules naming every other syscall`,
    );
  }
  const doc = {
    apiVersion: SPO_API_VERSION,
    kind: 'SeccompProfile',
    metadata: namespace === undefined ? { name } : { name, namespace },
    spec: {
      defaultAction: profile.defaultAction,
      architectures: [...profile.architectures],
      syscalls: profile.syscalls.map((rule) => ({
        action: rule.action,
        ...(rule.errnoRet === undefined ? {} : { errnoRet: rule.errnoRet }),
        names: [...rule.names],
      })),
    },
  };
  const problems = validateSeccompProfileCrd(doc);
  if (problems.length > 0) throw new UnsupportedError(`SeccompProfile ${name}: ${problems.join('; ')}`);
  return yamlText(doc);
}

/** True when every syscall of the profile's native table is named by some rule (so the default never applies to a known name). */
function defaultCarriedByRules(profile: DockerSeccompProfile): boolean {
  const native = Object.values(PLATFORMS).find((spec) => spec.architectures[0] === profile.architectures[0]);
  if (!native) return false;
  const named = new Set(profile.syscalls.flatMap((rule) => rule.names));
  return [...namesOf(native.table)].every((syscall) => named.has(syscall));
}

const SPO_FLAGS = [
  'SECCOMP_FILTER_FLAG_TSYNC',
  'SECCOMP_FILTER_FLAG_LOG',
  'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
  'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
];
const SPO_OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];
const SPEC_FIELDS = [
  'disabled',
  'baseProfileName',
  'defaultAction',
  'architectures',
  'listenerPath',
  'listenerMetadata',
  'syscalls',
  'flags',
];
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isNonNegativeInteger = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Problems of `doc` against the security-profiles-operator `SeccompProfile` CRD (v1beta1 openAPIV3
 * schema of `deploy/base-crds/crds/seccompprofile.yaml` / `api/seccompprofile/v1beta1`): required
 * fields, types, enums of actions, architectures, flags and operators, `args` ≤ 6 items, metadata
 * names as the API server checks them. Unknown fields under `spec` are reported too: the API server
 * would silently prune them. Empty when the document is acceptable.
 */
export function validateSeccompProfileCrd(doc: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(doc)) return ['document is not an object'];
  if (doc.apiVersion !== SPO_API_VERSION) problems.push(`apiVersion must be ${SPO_API_VERSION}, got ${JSON.stringify(doc.apiVersion)}`);
  if (doc.kind !== 'SeccompProfile') problems.push(`kind must be SeccompProfile, got ${JSON.stringify(doc.kind)}`);

  const metadata = doc.metadata;
  if (!isObject(metadata)) problems.push('metadata is required and must be an object');
  else {
    const { name, namespace } = metadata;
    if (typeof name !== 'string' || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
      problems.push(`metadata.name must be a DNS-1123 subdomain (lower case, ≤ 253 chars), got ${JSON.stringify(name)}`);
    }
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length > 63 || !DNS1123_LABEL.test(namespace))) {
      problems.push(`metadata.namespace must be a DNS-1123 label (≤ 63 chars), got ${JSON.stringify(namespace)}`);
    }
  }

  const spec = doc.spec;
  if (!isObject(spec)) {
    problems.push('spec is required and must be an object');
    return problems;
  }
  for (const key of Object.keys(spec)) {
    if (!SPEC_FIELDS.includes(key)) problems.push(`spec.${key} is not in the CRD schema (the API server would prune it)`);
  }
  const enumCheck = (value: unknown, allowed: readonly string[], where: string) => {
    if (typeof value !== 'string' || !allowed.includes(value)) problems.push(`${where} must be one of the CRD's enum values, got ${JSON.stringify(value)}`);
  };
  const stringCheck = (value: unknown, where: string) => {
    if (value !== undefined && typeof value !== 'string') problems.push(`${where} must be a string`);
  };

  if (spec.defaultAction === undefined) problems.push('spec.defaultAction is required');
  else enumCheck(spec.defaultAction, SECCOMP_ACTIONS, 'spec.defaultAction');
  if (spec.disabled !== undefined && typeof spec.disabled !== 'boolean') problems.push('spec.disabled must be a boolean');
  stringCheck(spec.baseProfileName, 'spec.baseProfileName');
  stringCheck(spec.listenerPath, 'spec.listenerPath');
  stringCheck(spec.listenerMetadata, 'spec.listenerMetadata');

  if (spec.architectures !== undefined) {
    if (!Array.isArray(spec.architectures)) problems.push('spec.architectures must be an array');
    else spec.architectures.forEach((arch, i) => enumCheck(arch, SECCOMP_ARCHES, `spec.architectures[${i}]`));
  }
  if (spec.flags !== undefined) {
    if (!Array.isArray(spec.flags)) problems.push('spec.flags must be an array');
    else spec.flags.forEach((flag, i) => enumCheck(flag, SPO_FLAGS, `spec.flags[${i}]`));
  }
  if (spec.syscalls !== undefined) {
    if (!Array.isArray(spec.syscalls)) problems.push('spec.syscalls must be an array');
    else spec.syscalls.forEach((rule: unknown, i) => validateRule(rule, `spec.syscalls[${i}]`, problems, enumCheck));
  }
  return problems;
}

function validateRule(
  rule: unknown,
  where: string,
  problems: string[],
  enumCheck: (value: unknown, allowed: readonly string[], where: string) => void,
): void {
  if (!isObject(rule)) {
    problems.push(`${where} must be an object`);
    return;
  }
  for (const key of Object.keys(rule)) {
    if (!['names', 'action', 'errnoRet', 'args'].includes(key)) problems.push(`${where}.${key} is not in the CRD schema (the API server would prune it)`);
  }
  if (rule.action === undefined) problems.push(`${where}.action is required`);
  else enumCheck(rule.action, SECCOMP_ACTIONS, `${where}.action`);
  if (rule.names === undefined) problems.push(`${where}.names is required`);
  else if (!Array.isArray(rule.names) || !rule.names.every((name) => typeof name === 'string')) {
    problems.push(`${where}.names must be an array of strings`);
  }
  if (rule.errnoRet !== undefined && !isNonNegativeInteger(rule.errnoRet)) problems.push(`${where}.errnoRet must be a non-negative integer`);
  if (rule.args !== undefined) {
    if (!Array.isArray(rule.args)) problems.push(`${where}.args must be an array`);
    else {
      if (rule.args.length > 6) problems.push(`${where}.args has ${rule.args.length} items, at most 6 allowed`);
      rule.args.forEach((arg: unknown, j) => {
        const at = `${where}.args[${j}]`;
        if (!isObject(arg)) {
          problems.push(`${at} must be an object`);
          return;
        }
        if (arg.index === undefined) problems.push(`${at}.index is required`);
        else if (!isNonNegativeInteger(arg.index)) problems.push(`${at}.index must be a non-negative integer`);
        if (arg.op === undefined) problems.push(`${at}.op is required`);
        else enumCheck(arg.op, SPO_OPS, `${at}.op`);
        for (const key of ['value', 'valueTwo'] as const) {
          if (arg[key] !== undefined && !isNonNegativeInteger(arg[key])) problems.push(`${at}.${key} must be a non-negative integer`);
        }
      });
    }
  }
}
