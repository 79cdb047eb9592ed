"""The Gateway: route table snapshots, explicit/auto/IDL routes, exposure."""
