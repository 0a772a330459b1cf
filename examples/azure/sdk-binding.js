// Registers the SDK-type binding factory of @azure/functions-extensions-servicebus (the
// `{ messages, actions }` input). A plain .js side-effect import: the package's typings point
// at its TypeScript sources, which do not compile under this repository's strict settings.
import '@azure/functions-extensions-servicebus';
