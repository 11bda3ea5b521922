// The Pod Security Standards "restricted" profile (which includes "baseline"), as the API server's
// PodSecurity admission checks it (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// for pod specs the chart renders and pods the injector mutates. Checks the pod spec only: the
// deprecated AppArmor annotations live in metadata and are not looked at.

type Obj = Record<string, unknown>;

const ALLOWED_VOLUME_SOURCES = new Set([
  'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret',
]);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const SECCOMP_TYPES = new Set(['RuntimeDefault', 'Localhost']);
const APPARMOR_TYPES = new Set(['RuntimeDefault', 'Localhost']);

function obj(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}

function list(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map(obj) : [];
}

/** Problems shared by the pod and container security contexts (SELinux, AppArmor, hostProcess). */
function contextProblems(sc: Obj, at: string, out: string[]): void {
  if (obj(sc.windowsOptions).hostProcess === true) out.push(`${at}.windowsOptions.hostProcess must not be true`);
  const se = obj(sc.seLinuxOptions);
  if (typeof se.type === 'string' && !SELINUX_TYPES.has(se.type)) out.push(`${at}.seLinuxOptions.type "${se.type}" is not allowed`);
  if (se.user !== undefined && se.user !== '') out.push(`${at}.seLinuxOptions.user must be unset`);
  if (se.role !== undefined && se.role !== '') out.push(`${at}.seLinuxOptions.role must be unset`);
  const appArmor = obj(sc.appArmorProfile).type;
  if (appArmor !== undefined && !APPARMOR_TYPES.has(String(appArmor))) {
    out.push(`${at}.appArmorProfile.type must be RuntimeDefault or Localhost, is ${String(appArmor)}`);
  }
  if (sc.runAsUser === 0) out.push(`${at}.runAsUser must not be 0`);
}

/**
 * Every violation of the restricted profile in `podSpec`, each naming the field
 * ("containers[promux].securityContext.allowPrivilegeEscalation must be false"); [] when compliant.
 */
export function psaRestrictedProblems(podSpec: object): string[] {
  const spec = podSpec as Obj;
  const out: string[] = [];
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
    if (spec[field] === true) out.push(`${field} must not be true`);
  }
  const podSc = obj(spec.securityContext);
  contextProblems(podSc, 'securityContext', out);
  for (const sysctl of list(podSc.sysctls)) {
    if (!SAFE_SYSCTLS.has(String(sysctl.name))) out.push(`securityContext.sysctls: ${String(sysctl.name)} is not a safe sysctl`);
  }
  const podSeccomp = obj(podSc.seccompProfile).type;
  if (podSeccomp !== undefined && !SECCOMP_TYPES.has(String(podSeccomp))) {
    out.push(`securityContext.seccompProfile.type must be RuntimeDefault or Localhost, is ${String(podSeccomp)}`);
  }

  for (const volume of list(spec.volumes)) {
    const sources = Object.keys(volume).filter((k) => k !== 'name');
    for (const source of sources) {
      if (!ALLOWED_VOLUME_SOURCES.has(source)) out.push(`volumes[${String(volume.name)}]: volume type ${source} is not allowed`);
    }
  }

  const containers = [
    ...list(spec.initContainers).map((c) => ['initContainers', c] as const),
    ...list(spec.containers).map((c) => ['containers', c] as const),
    ...list(spec.ephemeralContainers).map((c) => ['ephemeralContainers', c] as const),
  ];
  for (const [kind, container] of containers) {
    const at = `${kind}[${String(container.name)}]`;
    const sc = obj(container.securityContext);
    const scAt = `${at}.securityContext`;
    contextProblems(sc, scAt, out);
    if (sc.privileged === true) out.push(`${scAt}.privileged must not be true`);
    if (sc.procMount !== undefined && sc.procMount !== 'Default') out.push(`${scAt}.procMount must be Default`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${scAt}.allowPrivilegeEscalation must be false`);
    const nonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
    if (nonRoot !== true) out.push(`${scAt}.runAsNonRoot must be true (here or in the pod's securityContext)`);
    const seccomp = obj(sc.seccompProfile).type ?? obj(podSc.seccompProfile).type;
    if (seccomp === undefined) {
      out.push(`${scAt}.seccompProfile.type must be set (here or in the pod's securityContext)`);
    } else if (!SECCOMP_TYPES.has(String(seccomp))) {
      out.push(`${scAt}.seccompProfile.type must be RuntimeDefault or Localhost, is ${String(seccomp)}`);
    }
    const caps = obj(sc.capabilities);
    const drop = Array.isArray(caps.drop) ? caps.drop.map(String) : [];
    if (!drop.includes('ALL')) out.push(`${scAt}.capabilities.drop must include ALL`);
    const added = Array.isArray(caps.add) ? caps.add.map(String) : [];
    for (const cap of added) {
      if (cap !== 'NET_BIND_SERVICE') out.push(`${scAt}.capabilities.add: ${cap} is not allowed (only NET_BIND_SERVICE)`);
    }
    for (const port of list(container.ports)) {
      if (port.hostPort !== undefined && port.hostPort !== 0) out.push(`${at}.ports: hostPort ${String(port.hostPort)} is not allowed`);
    }
  }
  return out;
}
