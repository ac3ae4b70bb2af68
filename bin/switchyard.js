#!/usr/bin/env node
// Entry point. Node 24 runs our TypeScript directly (type stripping).
import '../src/cli.ts';
