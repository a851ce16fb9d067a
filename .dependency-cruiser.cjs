// `npm run lint`: the import rules of the control plane (depcruise apps packages e2e).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      comment: "A module never reaches itself through its imports (type-only imports count).",
      from: {},
      to: { circular: true },
    },
    {
      name: "routes-call-services",
      severity: "error",
      comment: "Routes do HTTP and call services; SQL lives behind a service.",
      from: { path: "\\.routes\\.ts$" },
      to: { path: "\\.repository\\.ts$" },
    },
    {
      name: "job-area-one-direction",
      severity: "error",
      comment:
        "jobs (services, reconciler) → events (recording what workers report) → workflows → bus (Redis streams). Never back up.",
      from: { path: "^apps/api/src/(workflows|bus)/" },
      to: { path: "^apps/api/src/(events/|jobs/(jobs\\.service|jobs\\.plugin|job-reconciler)\\.ts)" },
    },
    {
      name: "bus-is-transport",
      severity: "error",
      comment: "The bus writes and reads streams; it does not drive workflows.",
      from: { path: "^apps/api/src/bus/" },
      to: { path: "^apps/api/src/workflows/" },
    },
    {
      name: "app-is-the-root",
      severity: "error",
      comment: "Only server.ts (and tests) build the app; plugins take AppDeps from app-deps.ts.",
      from: { path: "^apps/api/src/", pathNot: "^apps/api/src/server\\.ts$" },
      to: { path: "^apps/api/src/app\\.ts$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)dist/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.base.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js", ".mjs"] },
  },
};
