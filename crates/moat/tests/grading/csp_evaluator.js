// Runs Google's CSP Evaluator on a policy with its default and its strict
// CSP checks; prints every finding (informational notes, severity NONE,
// left out) as JSON and exits 1 when there is any.
//
// usage: NODE_PATH=NODE_MODULES node csp_evaluator.js "POLICY"
"use strict";
const { CspEvaluator, STRICTCSP_CHECKS } = require("csp_evaluator/dist/evaluator.js");
const { CspParser } = require("csp_evaluator/dist/parser.js");
const { Severity, Type } = require("csp_evaluator/dist/finding.js");

const policy = process.argv[2];
const findings = [];
for (const checks of [undefined, STRICTCSP_CHECKS]) {
  const parsed = new CspParser(policy).csp;
  for (const f of new CspEvaluator(parsed).evaluate(checks)) {
    if (f.severity !== Severity.NONE) {
      findings.push({
        severity: Severity[f.severity],
        type: Type[f.type],
        directive: f.directive,
        value: f.value,
        description: f.description,
      });
    }
  }
}
console.log(JSON.stringify(findings, null, 1));
process.exit(findings.length ? 1 : 0);
