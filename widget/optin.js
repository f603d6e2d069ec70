/*! clicktochat opt-in panel | MIT */ export default () => {};
