// Grades a moat page the way Mozilla's HTTP Observatory does, against a
// local moat: the Observatory's own retriever, tests and grader, given
// the ports (its `scan` takes a host name only) and, for a page behind
// the sign-in, the session cookie.
//
// usage: node observatory.mjs NODE_MODULES HOST HTTPS_PORT HTTP_PORT PATH [COOKIE]
// Prints the grade, score and every test's result as JSON; exits 0 on A+.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, host, httpsPort, httpPort, path, cookie] = process.argv.slice(2);
const load = (file) =>
  import(pathToFileURL(join(modules, "@mdn/mdn-http-observatory/src", file)).href);
const { retrieve } = await load("retriever/retriever.js");
const { ALL_TESTS, NUM_TESTS } = await load("constants.js");
const { MINIMUM_SCORE_FOR_EXTRA_CREDIT } = await load("grader/charts.js");
const { getGradeForScore, getScoreModifier } = await load("grader/grader.js");

const headers = ["Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"];
if (cookie) headers.push(`Cookie: ${cookie}`);
const site = await retrieve(host, { httpsPort, httpPort, path, headers });
if (!site.responses.auto) {
  console.error(`no answer from ${host}:${httpsPort}${path}`);
  process.exit(2);
}
// The scanner's scoring (src/scanner/index.js): bonuses count only when
// the penalties leave at least the minimum.
let passed = 0;
let withCredit = 100;
let uncurved = 100;
const tests = {};
for (const test of ALL_TESTS) {
  const o = test(site);
  const modifier = getScoreModifier(o.result);
  passed += o.pass ? 1 : 0;
  withCredit += modifier;
  if (modifier < 0) uncurved += modifier;
  tests[o.constructor.name] = { pass: o.pass, result: o.result, modifier };
}
const { grade, score } = getGradeForScore(
  uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? withCredit : uncurved,
);
// Where the redirects ended: the page that was graded.
const history = site.session?.redirectHistory ?? [];
const graded = history.length ? history[history.length - 1].url.href : site.session?.url.href;
console.log(JSON.stringify({ graded, grade, score, passed, of: NUM_TESTS, tests }, null, 1));
process.exit(grade === "A+" ? 0 : 1);
