import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';

const DIR = 'deploy/kubernetes';

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

type Container = {
  name: string;
  command?: string[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
};
type PodSpec = {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
};

function manifests(): { file: string; manifest: Manifest }[] {
  return readdirSync(DIR)
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((document) => {
        if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0].message}`);
        return { file, manifest: document.toJS() as Manifest };
      }),
    );
}

function one<T>(kind: string): Manifest & T {
  const found = manifests().filter(({ manifest }) => manifest.kind === kind);
  expect(found.length).toBe(1);
  return found[0].manifest as Manifest & T;
}

/** The service's own shutdown deadline, where main.ts keeps it. */
function shutdownDeadlineSeconds(): number {
  const match = /SHUTDOWN_DEADLINE_MS = ([\d_]+);/.exec(readFileSync('src/main.ts', 'utf8'));
  return Number(match![1].replaceAll('_', '')) / 1000;
}

/** The Kubernetes manifests of deploy/kubernetes, against the API's schemas (kubernetes-models) and what the service needs. */
describe('deploy/kubernetes', () => {
  it('validates every manifest against its Kubernetes schema', async () => {
    const lines: string[] = [];
    for (const { file, manifest } of manifests()) {
      const models = (await import(`kubernetes-models/${manifest.apiVersion}`)) as Record<
        string,
        new (data: unknown) => { validate(): void }
      >;
      const Model = models[manifest.kind];
      expect([file, manifest.kind, typeof Model]).toEqual([file, manifest.kind, 'function']);
      new Model(manifest).validate();
      lines.push(`${file}: ${manifest.apiVersion} ${manifest.kind} ${manifest.metadata.name} valid`);
    }
    process.stdout.write(`Kubernetes manifests:\n  ${lines.join('\n  ')}\n`);
    expect(lines.length).toBe(8);
  });

  it('refuses a manifest that breaks its schema (the check is real)', async () => {
    const { Deployment } = await import('kubernetes-models/apps/v1');
    const deployment = one<{ spec: { replicas: unknown } }>('Deployment');
    expect(() => new Deployment({ ...deployment, spec: { ...deployment.spec, replicas: 'three' } } as never).validate()).toThrow();
  });

  it('runs 3 non-root replicas on a read-only root filesystem, with probes, resources and a grace period past the shutdown deadline', () => {
    const deployment = one<{ spec: { replicas: number; template: { spec: PodSpec } } }>('Deployment');
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    expect(deployment.spec.replicas).toBe(3);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(container.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(container.readinessProbe?.httpGet?.path).toBe('/health/ready');
    expect(container.resources?.requests).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
    expect(container.resources?.limits?.memory).toEqual(expect.any(String));
    const preStopSeconds = Number(container.lifecycle?.preStop?.exec?.command[1] ?? 0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownDeadlineSeconds() + preStopSeconds);
  });

  it('gives the Deployment and the migration Job their configuration and secrets, and leaves migrating to the Job', () => {
    const config = one<{ data: Record<string, string> }>('ConfigMap');
    const secret = one<{ stringData: Record<string, string> }>('Secret');
    // What NODE_ENV=production requires (src/config/app-config.ts).
    expect(config.data).toMatchObject({ NODE_ENV: 'production', MIGRATIONS_RUN: 'false', ATLASSIAN_CLIENT_ID: expect.any(String) });
    expect(Object.keys(secret.stringData)).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'ATLASSIAN_CLIENT_SECRET', 'API_KEYS', 'TOKEN_ENCRYPTION_KEYS']),
    );
    const job = one<{ spec: { template: { spec: PodSpec } } }>('Job');
    const deployment = one<{ spec: { template: { spec: PodSpec } } }>('Deployment');
    for (const pod of [job.spec.template.spec, deployment.spec.template.spec]) {
      expect(pod.containers[0].envFrom).toEqual([
        { configMapRef: { name: config.metadata.name } },
        { secretRef: { name: secret.metadata.name } },
      ]);
      expect(pod.containers[0].securityContext).toMatchObject({ readOnlyRootFilesystem: true });
    }
    expect(job.spec.template.spec.containers[0].command).toEqual(['node', 'dist/src/database/migrate.js', 'run']);
  });

  it('selects the replicas alike in the Service, the PodDisruptionBudget and the NetworkPolicy', () => {
    const labels = one<{ spec: { template: { metadata: { labels: Record<string, string> } } } }>('Deployment').spec.template.metadata
      .labels;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([key, value]) => labels[key] === value);
    expect(selects(one<{ spec: { selector: Record<string, string> } }>('Service').spec.selector)).toBe(true);
    const pdb = one<{ spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget');
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBe(2);
    const policy = one<{ spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[] } }>('NetworkPolicy');
    expect(selects(policy.spec.podSelector.matchLabels)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
  });

  it('exposes only the browser routes publicly: /metrics, /health and /v1 stay inside the cluster', () => {
    const ingress = one<{ spec: { rules: { http: { paths: { path: string }[] } }[] } }>('Ingress');
    const paths = ingress.spec.rules.flatMap((rule) => rule.http.paths.map((p) => p.path));
    expect(paths).toEqual(['/auth/atlassian/']);
  });
});
