// msw: the API as the tests want it to answer. Handlers are added per test.
import { setupServer } from "msw/node";

export const server = setupServer();
