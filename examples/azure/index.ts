/**
 * Entry point of the example Functions app (package.json `main`): registers the SDK-type
 * binding factory, then the functions.
 */
import './sdk-binding.js';
import { app } from '@azure/functions';
import { createBroker, registerFunctions } from './functions.ts';

registerFunctions(app, createBroker());
