// Builds the site folder out/site/ that coretalk serves with `[web] static_dir` for the browser
// test: the contents of the npm package `tinode-webapp` with its index.html rewritten to work
// without internet access.
//
// index.html of tinode-webapp 0.25.3 loads from CDNs: an Intl.Segmenter polyfill, React,
// ReactDOM, react-intl and qrcodejs (cdn.jsdelivr.net), Roboto and Material Icons stylesheets
// (fonts.googleapis.com), and a `firebase-init.js` that is not in the package. This script
//   - replaces the four library <script>s with local copies taken from node_modules (put in
//     out/site/vendor/),
//   - drops the polyfill (current Chromium has Intl.Segmenter), the font stylesheets (icons
//     then show their ligature names, e.g. "send"), and firebase-init.js (push stays off),
// and fails loudly if any tag it expects is not found, so a new web app version that changes
// index.html is noticed instead of silently loading from the internet.
//
// Usage: node prepare.js        (run from tests/webapp after `npm ci`)

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SITE = path.join(HERE, 'out', 'site');
const require = createRequire(import.meta.url);

/** The folder of an installed package. */
function pkgDir(name) {
  return path.dirname(require.resolve(`${name}/package.json`));
}

/** Local copies of the CDN libraries: [CDN URL pattern, package, file in package, site name]. */
const VENDOR = [
  [/https:\/\/cdn\.jsdelivr\.net\/npm\/react@18\.3\.1\/umd\/react\.production\.min\.js/, 'react',
    'umd/react.production.min.js', 'react.production.min.js'],
  [/https:\/\/cdn\.jsdelivr\.net\/npm\/react-dom@18\.3\.1\/umd\/react-dom\.production\.min\.js/,
    'react-dom', 'umd/react-dom.production.min.js', 'react-dom.production.min.js'],
  // The CDN serves a minified build; the npm package has only the plain one.
  [/https:\/\/cdn\.jsdelivr\.net\/npm\/react-intl@7\.1\.6\/react-intl\.iife(\.min)?\.js/,
    'react-intl', 'react-intl.iife.js', 'react-intl.iife.js'],
  [/https:\/\/cdn\.jsdelivr\.net\/npm\/qrcodejs@1\.0\.0\/qrcode\.min\.js/, 'qrcodejs',
    'qrcode.min.js', 'qrcode.min.js'],
];

/** Tags removed from index.html: [description, pattern matching the whole tag]. */
const DROP = [
  ['Intl.Segmenter polyfill <script>',
    /<script[^>]*src="https:\/\/polyfill[^"]*Intl\.Segmenter[^"]*"[^>]*><\/script>\s*/],
  ['Roboto font <link>', /<link[^>]*href="https:\/\/fonts\.googleapis\.com\/css\?[^"]*"[^>]*\/?>\s*/],
  ['Material Icons <link>',
    /<link[^>]*href="https:\/\/fonts\.googleapis\.com\/icon\?[^"]*"[^>]*\/?>\s*/],
  ['firebase-init.js <script>', /<script[^>]*src="firebase-init\.js"[^>]*><\/script>\s*/],
];

function fail(msg) {
  console.error(`prepare.js: ${msg}`);
  process.exit(1);
}

function main() {
  const webapp = pkgDir('tinode-webapp');
  const version = JSON.parse(fs.readFileSync(path.join(webapp, 'package.json'), 'utf8')).version;

  fs.rmSync(SITE, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(SITE), { recursive: true });
  fs.cpSync(webapp, SITE, { recursive: true, dereference: true });
  // Not part of the site.
  for (const f of ['package.json', 'README.md', 'LICENSE', 'index-dev.html']) {
    fs.rmSync(path.join(SITE, f), { force: true });
  }

  let html = fs.readFileSync(path.join(webapp, 'index.html'), 'utf8');

  fs.mkdirSync(path.join(SITE, 'vendor'));
  for (const [cdn, pkg, file, name] of VENDOR) {
    const tag = new RegExp(`<script[^>]*src="${cdn.source}"[^>]*></script>`);
    if (!tag.test(html)) fail(`index.html has no <script> matching ${cdn} (tinode-webapp ${version})`);
    html = html.replace(tag, `<script src="vendor/${name}"></script>`);
    const src = path.join(pkgDir(pkg), file);
    if (!fs.existsSync(src)) fail(`${pkg} has no ${file}`);
    fs.copyFileSync(src, path.join(SITE, 'vendor', name));
  }
  for (const [what, pattern] of DROP) {
    if (!pattern.test(html)) fail(`index.html has no ${what} (tinode-webapp ${version})`);
    html = html.replace(pattern, '');
  }
  // Anything still loaded from elsewhere would make the test depend on the internet.
  const external = html.match(/<(script|link)[^>]*(src|href)="(https?:)?\/\/[^"]*"[^>]*>/g) || [];
  const loads = external.filter((t) => !/rel="canonical"/.test(t));
  if (loads.length) fail(`index.html still loads external resources:\n  ${loads.join('\n  ')}`);
  if (!/<script src="umd\/index\.prod\.js"><\/script>/.test(html)) {
    fail('index.html does not load umd/index.prod.js');
  }

  fs.writeFileSync(path.join(SITE, 'index.html'), html);
  console.log(`prepare.js: tinode-webapp ${version} site ready in ${path.relative(process.cwd(), SITE) || '.'}`);
}

main();
