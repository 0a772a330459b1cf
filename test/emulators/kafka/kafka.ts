/**
 * Apache Kafka 4.4 in KRaft mode (one node, broker and controller in one JVM) as the test
 * peer. There is no reachable Kafka tarball, so the jars come from Maven Central: `pom.xml`
 * next to this file resolves `org.apache.kafka:kafka_2.13` (+ a log4j2 binding) with
 * `mvn dependency:copy-dependencies` into `.cache/kafka/lib/` once (reused on reruns, under a
 * file lock so the test project and the bench may resolve at once).
 *
 * Each start formats a fresh KRaft log directory under `.cache/kafka/runs/` (kept across
 * {@link KafkaPeer.restart}, removed by `stop()`), writes `server.properties` (loopback
 * listeners, internal topics with one replica, no initial rebalance delay) and runs
 * `java -Xms128m -Xmx256m -cp 'lib/*' kafka.Kafka server.properties` under `timeout`. Ready
 * means a metadata call answers *and* a consumer group join succeeds (the group coordinator
 * has loaded `__consumer_offsets`), not an open port.
 *
 * `CLOUDMOM_KAFKA_BROKERS` (comma-separated `host:port`) replaces the peer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  cacheDir,
  freePort,
  have,
  log,
  ROOT,
  type RunningPeer,
  run,
  startPeer,
} from '../harness.ts';

export const KAFKA_VERSION = '4.4.0';
export const ENV_VAR = 'CLOUDMOM_KAFKA_BROKERS';

const POM = join(ROOT, 'test/emulators/kafka/pom.xml');

/**
 * Resolves the Kafka jars into `.cache/kafka/lib/` unless they are there (a stamp file names
 * the pom's hash); returns the lib folder. Needs `java` (17+) and `mvn` on the PATH.
 */
export function installKafka(): string {
  const dir = cacheDir('kafka');
  const lib = join(dir, 'lib');
  const pom = readFileSync(POM, 'utf8');
  const stamp = join(lib, `.complete-${KAFKA_VERSION}-${hash(pom)}`);
  for (const tool of ['java', 'mvn'])
    if (!have(tool))
      throw new Error(
        `The Kafka test peer needs \`${tool}\` (Java 17+ and Maven: e.g. apt-get install openjdk-17-jre-headless maven), or set ${ENV_VAR} to a running Kafka (host:port)`,
      );
  if (existsSync(stamp)) return lib;
  const t0 = Date.now();
  copyFileSync(POM, join(dir, 'pom.xml'));
  log('kafka', `resolving kafka_2.13:${KAFKA_VERSION} from Maven Central into ${lib}`);
  run(
    'flock',
    [
      join(dir, 'install.lock'),
      'sh',
      '-c',
      `test -f '${stamp}' || { rm -rf lib && mvn -B -q dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime && touch '${stamp}'; }`,
    ],
    `the Kafka jars come from Maven Central through \`mvn\`; or set ${ENV_VAR}`,
    { cwd: dir },
  );
  log('kafka', `jars resolved in ${Date.now() - t0} ms`);
  return lib;
}

export interface KafkaPeer extends RunningPeer {
  /** `host:port` of the PLAINTEXT listener (what `bootstrapBrokers` takes). */
  readonly endpoint: string;
  /** The run folder (config and log dir); undefined when the environment supplied Kafka. */
  readonly dir: string | undefined;
  /** Stops Kafka (SIGTERM) and starts it again on the same ports and log dir (started peers only). */
  restart(): Promise<void>;
}

/**
 * Starts a single-node Kafka on 127.0.0.1 (free ports unless given), or uses
 * `CLOUDMOM_KAFKA_BROKERS`. `stop()` removes the run folder.
 */
export async function startKafka(
  options: { port?: number; env?: boolean } = {},
): Promise<KafkaPeer> {
  const fromEnv = options.env !== false ? process.env[ENV_VAR] : undefined;
  if (fromEnv) {
    const peer = await startPeer({
      name: 'kafka',
      envVar: ENV_VAR,
      endpoint: fromEnv,
      command: () => ({ cmd: 'false', args: [] }),
      ready: (endpoint) => kafkaReady(endpoint),
    });
    return {
      ...peer,
      dir: undefined,
      restart: () => Promise.reject(new Error(`cannot restart Kafka supplied by ${ENV_VAR}`)),
    };
  }
  const port = options.port ?? (await freePort());
  const controllerPort = await freePort();
  const dir = join(cacheDir('kafka'), 'runs', String(port));
  let lib = '';
  const spec = {
    name: 'kafka',
    envVar: options.env === false ? '' : ENV_VAR,
    endpoint: `127.0.0.1:${port}`,
    install: () => {
      lib = installKafka();
      format(lib, dir, port, controllerPort);
    },
    command: () => ({
      cmd: 'java',
      args: [
        '-Xms128m',
        '-Xmx256m',
        '-XX:+UseSerialGC',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
        '-cp',
        `${lib}/*`,
        'kafka.Kafka',
        join(dir, 'server.properties'),
      ],
      cwd: dir,
    }),
    ready: (endpoint: string) => kafkaReady(endpoint),
    startTimeoutMs: 90_000,
  };
  let peer = await startPeer(spec);
  return {
    endpoint: spec.endpoint,
    started: true,
    dir,
    async restart() {
      await peer.stop();
      const t0 = Date.now();
      peer = await startPeer({ ...spec, install: undefined });
      log('kafka', `restarted in ${Date.now() - t0} ms`);
    },
    async stop() {
      await peer.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes the config of a one-node KRaft cluster into `dir` and formats its log dir. */
function format(lib: string, dir: string, port: number, controllerPort: number): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const data = join(dir, 'data');
  writeFileSync(
    join(dir, 'server.properties'),
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
      `log.dirs=${data}`,
      'num.partitions=1',
      'default.replication.factor=1',
      'min.insync.replicas=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // Short session timeouts let a test's consumer group settle fast after a member dies.
      'group.min.session.timeout.ms=500',
      'group.consumer.min.session.timeout.ms=500',
      'group.consumer.min.heartbeat.interval.ms=100',
      'group.consumer.heartbeat.interval.ms=500',
      'auto.create.topics.enable=true',
      'delete.topic.enable=true',
      'log.flush.interval.messages=9223372036854775807',
      'num.network.threads=2',
      'num.io.threads=2',
      'background.threads=2',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'log4j2.properties'),
    [
      'status=warn',
      'appender.out.type=Console',
      'appender.out.name=out',
      'appender.out.layout.type=PatternLayout',
      'appender.out.layout.pattern=[%d] %p %m (%c)%n',
      'rootLogger.level=WARN',
      'rootLogger.appenderRef.out.ref=out',
      'logger.started.name=kafka.server.KafkaRaftServer',
      'logger.started.level=INFO',
      '',
    ].join('\n'),
  );
  // A cluster id is 16 random bytes in URL-safe base64 (what `StorageTool random-uuid` prints);
  // like Kafka's own Uuid.randomUuid, never one starting with "-" (it would read as an option).
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  run(
    'java',
    [
      '-Xmx128m',
      `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
      '-cp',
      `${lib}/*`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      join(dir, 'server.properties'),
    ],
    'formatting the KRaft log dir needs java 17+',
    { cwd: dir },
  );
}

/**
 * True once Kafka answers a metadata call and a consumer group can be joined (the group
 * coordinator has loaded). Each probe is bounded to a few seconds.
 */
export async function kafkaReady(endpoint: string): Promise<boolean> {
  const { Admin, Consumer } = await import('@platformatic/kafka');
  const bootstrapBrokers = endpoint.split(',');
  const common = {
    clientId: 'cloudmom-ready',
    bootstrapBrokers,
    retries: 0,
    timeout: 3000,
    connectTimeout: 1000,
  };
  const admin = new Admin(common);
  try {
    await admin.metadata({ topics: [] });
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => {});
  }
  const consumer = new Consumer({
    ...common,
    groupId: `cloudmom-ready-${randomBytes(4).toString('hex')}`,
  });
  try {
    await consumer.joinGroup({
      sessionTimeout: 6000,
      rebalanceTimeout: 6000,
      heartbeatInterval: 1000,
    });
    return true;
  } catch {
    return false;
  } finally {
    await consumer.close(true).catch(() => {});
  }
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

/**
 * The first idempotent producer of a fresh cluster waits ~1 s for its producer id (the
 * controller allocates the first id block): one produce here, so the first test does not.
 */
export async function warmUp(endpoint: string): Promise<void> {
  const { Admin, Producer, ProduceAcks } = await import('@platformatic/kafka');
  const bootstrapBrokers = endpoint.split(',');
  const admin = new Admin({ clientId: 'cloudmom-warmup', bootstrapBrokers });
  const producer = new Producer({
    clientId: 'cloudmom-warmup',
    bootstrapBrokers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    retryDelay: 100,
    retries: 50,
  });
  try {
    await admin
      .createTopics({ topics: ['cloudmom-warmup'], partitions: 1, replicas: 1 })
      .catch(() => undefined);
    await producer.send({ messages: [{ topic: 'cloudmom-warmup', value: Buffer.from('warm') }] });
  } finally {
    await Promise.allSettled([producer.close(), admin.close()]);
  }
}
