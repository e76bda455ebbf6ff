import type { ThrowawayCluster } from './postgres.js';
import type { ScenarioReport } from './report.js';
import type { Stack } from './stack.js';

/** What the runner hands every scenario besides its report and its deployment. */
export interface ScenarioOptions {
  /** Scenario 1's length (FAULTS_STEADY_SECONDS). */
  steadySeconds: number;
  /** The deployment's own PostgreSQL cluster, when it has one (a scenario may stop and start it). */
  cluster: ThrowawayCluster | undefined;
}

/** One fault and what must hold through it; `id` is what FAULTS_ONLY names. */
export interface Scenario {
  id: string;
  title: string;
  run(report: ScenarioReport, stack: Stack, options: ScenarioOptions): Promise<void>;
}
