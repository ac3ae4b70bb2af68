// `npm test` runs this file; the runner itself is TypeScript (Node 24 strips the types).
import './run-tests.ts';
