// A child that loads one task file with require() and exits: what a fresh try costs at the least
// before any of the runner's work (the child runtime loads a task file the same way). For an ES
// module this starts Node's ES module machinery, which an empty CommonJS file does not.
'use strict';
require(process.argv[2]);
