// @nestjs/throttler is CommonJS and require()s the ES modules of @nestjs/common. Jest refuses such a require() when
// it happens while those modules are still being linked in a test file's import graph (Node itself allows it), so it
// is loaded here first, before any test file's graph.
await import('@nestjs/throttler');
