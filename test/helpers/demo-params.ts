/** The demo data set the test suite runs on: small enough to generate in seconds. */
export const TEST_DEMO = { seed: 42, communes: 400, parcels: 20000, roads: 2000, pois: 2000 } as const;
