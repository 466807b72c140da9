import type { DashboardState, MetricsBackend } from '../index.js';

/**
 * A backend over one state held in memory, for running the domain API without touching the
 * project: `record --json -` tries every event on a scratch state before writing any, and `show`
 * reads the sessions in progress from the snapshot it already loaded.
 */
export function memoryBackend(state: DashboardState): MetricsBackend {
  return {
    projectName: state.project_name,
    load: async () => state,
    update: async (mutate) => {
      await mutate(state);
      return state;
    },
  };
}
