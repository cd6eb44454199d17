#!/usr/bin/env node
// Ingest a multi-document Backstage YAML the way a stock catalog backend ingests a registered location,
// using Backstage's own code (pinned in package.json), and report every processing error.
//
//   node validate.mjs [FILE|-] [--rules portal|stock] [--profiles stock,model-layers] [--location-url URL]
//
// Prints {entities, errors: [{index, kind, name, message, ...}], ...} as JSON; exits 1 on any error,
// 2 on a usage or set-up problem.
//
// What runs (see README.md): the backend's CatalogBuilder composes the entity policy and the processor
// list exactly as at start-up; its DefaultCatalogProcessingOrchestrator processes a url Location entity
// (what POST /locations registers) whose target serves the input, then every entity that location
// emitted, as the processing engine does. Errors are what the engine would store in refresh_state.errors.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
let parseAllDocuments, catalogModel, catalogModelAlpha, ConfigReader, ScmIntegrations;
let CatalogBuilder, DefaultCatalogProcessingOrchestrator, DefaultCatalogRulesEnforcer, ModelHolder;
let defaultEntityDataParser, locationSpecToLocationEntity, VERSIONS;
try {
  ({ parseAllDocuments } = require('yaml'));
  catalogModel = require('@backstage/catalog-model');
  catalogModelAlpha = require('@backstage/catalog-model/alpha');
  ({ ConfigReader } = require('@backstage/config'));
  ({ ScmIntegrations } = require('@backstage/integration'));
  // The backend's public API exports BuiltinKindsEntityProcessor but not the builder and orchestrator needed to
  // run its pipeline unchanged: load them from the package's dist (exact version pinned, so the paths hold).
  const backendRoot = path.dirname(require.resolve('@backstage/plugin-catalog-backend/package.json'));
  const backend = (file) => require(path.join(backendRoot, 'dist', file));
  ({ CatalogBuilder } = backend('service/CatalogBuilder.cjs.js'));
  ({ DefaultCatalogProcessingOrchestrator } = backend('processing/DefaultCatalogProcessingOrchestrator.cjs.js'));
  ({ DefaultCatalogRulesEnforcer } = backend('ingestion/CatalogRules.cjs.js'));
  ({ ModelHolder } = backend('model/ModelHolder.cjs.js'));
  ({ defaultEntityDataParser } = backend('util/parse.cjs.js'));
  ({ locationSpecToLocationEntity } = backend('util/conversion.cjs.js'));
  const fromBackend = createRequire(path.join(backendRoot, 'package.json'));
  VERSIONS = Object.fromEntries(
    ['@backstage/plugin-catalog-backend', '@backstage/catalog-model', '@backstage/plugin-catalog-node', 'yaml'].map(
      (name) => [name, fromBackend(`${name}/package.json`).version],
    ),
  );
} catch (error) {
  process.stderr.write(`validate.mjs: cannot load Backstage (${error.message}); ` +
    `run: npm ci --prefix ${path.dirname(new URL(import.meta.url).pathname)} --no-audit --no-fund --ignore-scripts\n`);
  process.exit(2);
}

const KNOWN_PROFILES = ['stock', 'model-layers'];

function usage(message) {
  process.stderr.write(`${message}\nusage: node validate.mjs [FILE|-] [--rules portal|stock] ` +
    `[--profiles ${KNOWN_PROFILES.join(',')}] [--location-url URL]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const options = { file: '-', rules: 'portal', profiles: KNOWN_PROFILES, locationUrl: 'https://agent-portal.example/api/v1/catalog/export/backstage.yaml' };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${arg} needs a value`));
    if (arg === '--rules') options.rules = value();
    else if (arg === '--profiles') options.profiles = value().split(',').filter(Boolean);
    else if (arg === '--location-url') options.locationUrl = value();
    else if (arg === '-h' || arg === '--help') usage('Validate a Backstage catalog file with the stock backend.');
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else options.file = arg;
  }
  if (!['portal', 'stock'].includes(options.rules)) usage(`--rules must be portal or stock, not ${options.rules}`);
  const unknown = options.profiles.filter((p) => !KNOWN_PROFILES.includes(p));
  if (unknown.length || !options.profiles.length) usage(`--profiles takes ${KNOWN_PROFILES.join(',')}`);
  return options;
}

// app-config `catalog:` section. "stock": nothing configured, the backend's built-in rules (Component, API,
// Location). "portal": create-app's default rules plus User/Group allowed for the portal's location only, as
// create-app does for examples/org.yaml; the README shows the app-config this stands for.
function catalogConfig(rules, locationUrl) {
  if (rules === 'stock') return {};
  return {
    rules: [
      { allow: ['Component', 'System', 'API', 'Resource', 'Location'] },
      { allow: ['User', 'Group'], locations: [{ type: 'url', exact: locationUrl }] },
    ],
  };
}

const quietLogger = {
  child: () => quietLogger,
  debug() {},
  info() {},
  warn() {},
  error() {},
};

// Backstage's errors already append their cause ("...; caused by Error: ..."); add causes only when they do not.
function describeError(error) {
  let message = error?.message ?? String(error);
  for (let e = error?.cause, depth = 0; e && depth < 10; e = e.cause, depth += 1) {
    const causeMessage = e.message ?? String(e);
    if (!message.includes(causeMessage)) message += `; caused by ${causeMessage}`;
  }
  return message;
}

/** Every processor and policy the backend would compose, built by CatalogBuilder itself. */
async function pipeline(profile, config) {
  const modelHolder = profile === 'model-layers'
    ? ModelHolder.modelPassthroughForTest(catalogModelAlpha.compileCatalogModel([
      catalogModelAlpha.defaultCatalogEntityModel,
      catalogModelAlpha.mcpServerApiEntityModel,
    ]))
    : undefined;
  const builder = CatalogBuilder.create({ config, logger: quietLogger, reader: undefined, modelHolder });
  const policy = builder.buildEntityPolicy();
  const processors = builder.buildProcessors();
  const orchestrator = (rulesEnforcer) => new DefaultCatalogProcessingOrchestrator({
    processors,
    integrations: ScmIntegrations.fromConfig(config),
    rulesEnforcer,
    logger: quietLogger,
    parser: defaultEntityDataParser,
    policy,
    allowedLocationTypes: builder.allowedLocationType,
  });
  // EntityPolicies.allOf(...) keeps its members in `policies`.
  const policies = (policy.policies ?? [policy]).map((p) => p.constructor.name);
  return { orchestrator, processors, policies };
}

/** A UrlReaderService that serves `data` at `url` only (UrlReaderProcessor calls search()). */
function fakeReader(url, data) {
  const notFound = (target) => Object.assign(new Error(`${target} not found`), { name: 'NotFoundError' });
  return {
    async search(target) {
      if (target !== url) throw notFound(target);
      return { etag: 'v1', files: [{ url, content: async () => data }] };
    },
    async readUrl(target) {
      if (target !== url) throw notFound(target);
      return { buffer: async () => data, etag: 'v1' };
    },
    async readTree(target) { throw notFound(target); },
  };
}

function entityRef(entity) {
  try {
    return catalogModel.stringifyEntityRef(entity).toLocaleLowerCase('en-US');
  } catch {
    return undefined;
  }
}

async function runProfile(profile, options, data, documents) {
  const config = new ConfigReader({ catalog: catalogConfig(options.rules, options.locationUrl) });
  const pipe = await pipeline(profile, config);
  const { processors, policies } = pipe;
  const orchestrator = pipe.orchestrator(DefaultCatalogRulesEnforcer.fromConfig(config));
  // Patch the reader in after building: the builder only hands it to UrlReaderProcessor.
  for (const processor of processors) {
    if (processor.getProcessorName() === 'url-reader') processor.options.reader = fakeReader(options.locationUrl, data);
  }

  const errors = [];
  const relations = [];
  const location = locationSpecToLocationEntity({ location: { type: 'url', target: options.locationUrl } });
  const locationResult = await orchestrator.process({ entity: location, state: {} });
  // parseEntityYaml reports unusable documents (YAML errors, non-object roots) in order, without their index.
  const unusable = documents.flatMap((doc, index) => (doc.unusable ? [index] : []));
  for (const error of locationResult.errors) {
    const message = describeError(error);
    const index = /^(YAML error at|Expected object at root)/.test(message) ? unusable.shift() ?? null : null;
    errors.push({ profile, index, kind: 'Location', name: location.metadata.name, message });
  }
  let emitted = locationResult.deferredEntities?.map((d) => d.entity) ?? [];
  if (!locationResult.ok) {
    // The backend ingests nothing from a failed location (e.g. a kind its rules refuse); read it once more with
    // every kind allowed so each entity's own errors are reported too.
    const diagnostic = await pipe.orchestrator({ isAllowed: () => true }).process({ entity: location, state: {} });
    emitted = diagnostic.deferredEntities?.map((d) => d.entity) ?? [];
  }

  // Map every emitted entity back to its document: the parser emits non-empty object documents in order.
  const byRef = new Map();
  documents.forEach((doc, index) => {
    const ref = doc.entity && entityRef(doc.entity);
    if (ref) byRef.set(ref, [...(byRef.get(ref) ?? []), index]);
  });
  const seen = new Map();
  for (const entity of emitted) {
    const ref = entityRef(entity);
    const indices = byRef.get(ref) ?? [];
    const index = indices[seen.get(ref) ?? 0] ?? null;
    seen.set(ref, (seen.get(ref) ?? 0) + 1);
    const where = { profile, index, kind: entity.kind, name: entity.metadata?.name };
    if (seen.get(ref) > 1) {
      // refresh_state is keyed by the lower-cased ref: within one location the last write silently wins.
      errors.push({ ...where, message: `Duplicate entity ref ${ref}: the catalog keeps only one of the documents ${indices.join(', ')}` });
      continue;
    }
    const result = await orchestrator.process({ entity: structuredClone(entity), state: {} });
    for (const error of result.errors) errors.push({ ...where, message: describeError(error) });
    if (result.ok) relations.push(...result.relations.map((r) => ({ ...where, relation: r })));
  }
  if (emitted.length === 0 && documents.some((d) => d.entity)) {
    errors.push({ profile, index: null, kind: 'Location', name: location.metadata.name, message: 'The location emitted no entities' });
  }

  // Relations to entities this file does not define: not a processing error (the backend stores the relation
  // and the UI shows the target as missing unless another location provides it), so only a warning.
  const known = new Set(emitted.map(entityRef));
  const warnings = [];
  for (const { relation, ...where } of relations) {
    const target = catalogModel.stringifyEntityRef(relation.target).toLocaleLowerCase('en-US');
    if (!known.has(target)) warnings.push({ ...where, message: `${relation.type} ${target}: no such entity in this location` });
  }
  return {
    errors,
    warnings,
    entities: emitted.length,
    relations: relations.length,
    policies,
    processors: processors.map((p) => p.getProcessorName()),
    kindValidation: profile === 'stock'
      ? 'BuiltinKindsEntityProcessor: api/component/resource/group/location/user/system/domain EntityV1alpha1Validator'
      : 'ModelProcessor: compileCatalogModel([defaultCatalogEntityModel, mcpServerApiEntityModel]) JSON schemas',
  };
}

function readInput(file) {
  try {
    return file === '-' ? readFileSync(0) : readFileSync(file);
  } catch (error) {
    return usage(`cannot read ${file}: ${error.message}`);
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const data = readInput(options.file);
  // Same library and options as the backend's parseEntityYaml, so document numbering matches what it sees.
  const documents = parseAllDocuments(data.toString('utf8'), { merge: false }).map((doc) => {
    const json = doc.errors?.length ? undefined : doc.toJSON();
    const entity = json && typeof json === 'object' && !Array.isArray(json) ? json : undefined;
    return { entity, unusable: Boolean(doc.errors?.length) || (json !== null && !entity) };
  });

  // Which kinds a backend without any catalog.rules config would refuse from this location.
  const builtinRules = DefaultCatalogRulesEnforcer.fromConfig(new ConfigReader({}));
  const deniedByBuiltinRules = [...new Set(documents.filter((d) => d.entity?.kind)
    .filter((d) => !builtinRules.isAllowed(d.entity, { type: 'url', target: options.locationUrl }))
    .map((d) => d.entity.kind))].sort();

  const report = {
    entities: documents.filter((d) => d.entity).length,
    errors: [],
    warnings: [],
    versions: VERSIONS,
    location: `url:${options.locationUrl}`,
    rules: options.rules,
    catalogConfig: catalogConfig(options.rules, options.locationUrl),
    deniedByBuiltinRules,
    profiles: {},
  };
  for (const profile of options.profiles) {
    const { errors, warnings, ...summary } = await runProfile(profile, options, data, documents);
    report.errors.push(...errors);
    report.warnings.push(...warnings);
    report.profiles[profile] = { ...summary, errors: errors.length };
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.exitCode = report.errors.length ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`validate.mjs failed: ${error?.stack ?? error}\n`);
  process.exit(2);
});
