// Subscribes to the Salesforce sandbox's Pub/Sub API with salesforce-pubsub-api-client (a client
// written by others): EXPECTED change events of TOPIC from the earliest retained one, then the
// events after the first of them again with a CUSTOM replay id. SF_INSTANCE_URL is the sandbox's URL with https:// (the
// client insists on it, as real orgs have it; the sandbox takes the same host and port as its own). Prints one JSON line: {"events": [...], "replayed": [...]}.
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';
import PubSubApiClient from 'salesforce-pubsub-api-client';

// The client trusts only the root certificates it bundles (it hands them to grpc-js as the CA list,
// so NODE_EXTRA_CA_CERTS does not reach them) and offers no CA option, only turning validation off.
// Keep validation on: add the sandbox's certificate (PUBSUB_CA_FILE) to the roots it passes.
const createSsl = grpc.credentials.createSsl;
grpc.credentials.createSsl = (rootCerts, ...rest) =>
    createSsl(Buffer.concat([rootCerts ?? Buffer.alloc(0), Buffer.from('\n'), fs.readFileSync(process.env.PUBSUB_CA_FILE)]), ...rest);

const { SF_ACCESS_TOKEN, SF_INSTANCE_URL, PUBSUB_ENDPOINT, TOPIC } = process.env;
const expected = Number(process.env.EXPECTED);
const quiet = process.env.VERBOSE ? console : { debug() {}, info() {}, warn: console.error, error: console.error };

const timeout = setTimeout(() => {
    console.error(`timed out waiting for ${expected} events on ${TOPIC}`);
    process.exit(1);
}, 60_000);

async function connect() {
    const client = new PubSubApiClient(
        { authType: 'user-supplied', accessToken: SF_ACCESS_TOKEN, instanceUrl: SF_INSTANCE_URL, pubSubEndpoint: PUBSUB_ENDPOINT },
        quiet
    );
    await client.connect();
    return client;
}

function summary(event) {
    const { ChangeEventHeader: header, ...fields } = event.payload;
    return {
        replayId: event.replayId,
        schemaId: event.schemaId,
        entityName: header.entityName,
        changeType: header.changeType,
        recordIds: header.recordIds,
        changeOrigin: header.changeOrigin,
        transactionKey: header.transactionKey,
        sequenceNumber: header.sequenceNumber,
        commitTimestamp: Number(header.commitTimestamp),
        commitNumber: Number(header.commitNumber),
        commitUser: header.commitUser,
        changedFields: header.changedFields,
        nulledFields: header.nulledFields,
        fields: Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))
    };
}

// One subscription on a client of its own (the client keeps one stream per topic, and the replay
// options count only in a stream's first request); resolves with the events once `count` arrived.
async function collect(subscribe, count) {
    const client = await connect();
    try {
        return await new Promise((resolve, reject) => {
            const events = [];
            subscribe(client, (subscription, callbackType, data) => {
                if (callbackType === 'event') {
                    events.push(summary(data));
                } else if (callbackType === 'lastEvent') {
                    resolve(events);
                } else if (callbackType === 'error') {
                    reject(data);
                }
            }, count);
        });
    } finally {
        client.close();
    }
}

// The client's close() leaves a channel open while its subscription stream is (the server keeps a
// stream open as long as the client wants events), so the script exits once the output is written.
try {
    const events = await collect((client, cb, n) => client.subscribeFromEarliestEvent(TOPIC, cb, n), expected);
    const replayed = await collect((client, cb, n) => client.subscribeFromReplayId(TOPIC, cb, n, events[0].replayId), expected - 1);
    process.stdout.write(JSON.stringify({ events, replayed }) + '\n', () => process.exit(0));
} catch (error) {
    console.error(error);
    process.exit(1);
}
