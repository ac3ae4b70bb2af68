// `npm run bench`: Node 24 runs the TypeScript directly (type stripping).
import './run.ts';
