#!/usr/bin/env node
// Entry point for `npx relay` / `npm start`: runs the compiled CLI.
import '../dist/cli/main.js';
