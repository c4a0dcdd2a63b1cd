/** The jsonld package ships no type declarations; only toRDF is used (rdfparse.ts). */
declare module 'jsonld' {
  const jsonld: {
    toRDF(input: unknown, options?: Record<string, unknown>): Promise<unknown>;
  };
  export default jsonld;
}
