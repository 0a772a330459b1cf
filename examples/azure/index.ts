/**
 * Entry point of the example Functions app (package.json `main`): registers the SDK-type
 * binding factory, then the function of each service this app runs (`CLOUDMOM_SERVICE`, set
 * per Function App by infra/azure/main.bicep; all of them when unset).
 */
import './sdk-binding.js';
import { app } from '@azure/functions';
import { createBroker, registerFunctions, servicesOf } from './functions.ts';

registerFunctions(app, Object.fromEntries(servicesOf().map((s) => [s, createBroker(s)])));
