// Names for the generated OpenAPI types (schema.d.ts is generated: `make frontend-types`).
import type { components, operations } from "./schema";

type Schemas = components["schemas"];

export type User = Schemas["UserOut"];
export type Role = User["role"];
export type Token = Schemas["TokenOut"];
export type Item = Schemas["ItemOut"];
/** An item in a list, with its owner's name. */
export type ItemEntry = Schemas["ItemEntry"];
export type ItemPage = Schemas["ItemPage"];
export type ItemCreate = Schemas["ItemCreate"];
export type ItemPatch = Schemas["ItemPatch"];
export type ItemStatus = Item["status"];
export type ProfilePatch = Schemas["ProfilePatch"];
export type PasswordChange = Schemas["PasswordChange"];
export type Problem = Schemas["Problem"];
export type LoginRequest = Schemas["LoginRequest"];
export type ItemListParams = NonNullable<operations["list_items"]["parameters"]["query"]>;
export type ItemSort = NonNullable<ItemListParams["sort"]>;
